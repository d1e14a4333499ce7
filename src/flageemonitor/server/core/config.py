"""Server settings, read from the environment (`FLAGEEMONITOR_*`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_FILE = "flageemonitor.db"


def default_database_url(cwd: Path | None = None) -> str:
    """A SQLite file in the working directory: the embedded default."""
    base = (cwd or Path.cwd()).resolve()
    return f"sqlite:///{base / DEFAULT_DATABASE_FILE}"


def normalize_database_url(url: str) -> str:
    """Make relative SQLite paths absolute (workers may not share the caller's cwd)
    and choose the psycopg 3 driver for plain `postgresql://` URLs."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:" and not rel.startswith(":"):
            return f"sqlite:///{Path(rel).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    database_url: str
    public_url: str | None = None
    auth_failure_limit: int = 20
    auth_failure_window: int = 60
    db_threads: int = 8
    default_image: str = "ghcr.io/flagee-cloud/flageemonitor-client:latest"
    default_runtime_name: str = "flageemonitor"
    default_container_root: str = "/flageemonitor"
    default_timezone: str = "America/Sao_Paulo"
    watchtower_image: str = "nickfedor/watchtower:1.20.2"  # the installers' own default
    watchtower_interval: int = 300

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        url = env.get("FLAGEEMONITOR_DATABASE_URL") or default_database_url()
        public = env.get("FLAGEEMONITOR_PUBLIC_URL") or None
        return cls(
            database_url=normalize_database_url(url),
            public_url=public.rstrip("/") if public else None,
            auth_failure_limit=int(env.get("FLAGEEMONITOR_AUTH_FAILURE_LIMIT", "20")),
            auth_failure_window=int(env.get("FLAGEEMONITOR_AUTH_FAILURE_WINDOW", "60")),
            db_threads=max(1, int(env.get("FLAGEEMONITOR_DB_THREADS", "8"))),
            default_image=env.get("FLAGEEMONITOR_DEFAULT_IMAGE", cls.default_image),
            watchtower_image=env.get("FLAGEEMONITOR_WATCHTOWER_IMAGE", cls.watchtower_image),
        )
