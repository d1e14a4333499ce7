"""Server settings from the environment (`FLAGEEMONITOR_*`, each with its `ARIUSMONITOR_*` twin).

One pydantic-settings model: a value given to the constructor wins, then the environment (the
`FLAGEEMONITOR_` name first, then the legacy twin), then the default. Values keep working when
`docker run --env-file` left quotes around them. A malformed value fails at start with the
variable's name.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flageemonitor.core.env import LEGACY_PREFIX, PREFIX, strip_quotes

DEFAULT_DATABASE_FILE = "flageemonitor.db"
SECRETS_KEY_FILE = "flageemonitor.key"
SIGNING_KEY_FILE = "flageemonitor-signing.key"
URL_HINT = "a file path (demo.db) or a URL: sqlite:////abs/path.db, postgresql://user:password@host:5432/dbname"


def default_database_url(cwd: Path | None = None) -> str:
    """A SQLite file in the working directory: the embedded default."""
    base = (cwd or Path.cwd()).resolve()
    return f"sqlite:///{base / DEFAULT_DATABASE_FILE}"


def normalize_database_url(url: str) -> str:
    """A plain path means a SQLite file; relative SQLite paths become absolute (workers may not
    share the caller's cwd); plain `postgresql://` URLs get the psycopg 3 driver."""
    url = url.strip()
    if not url:
        raise ValueError(f"database URL is empty; use {URL_HINT}")
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:" and not rel.startswith(":"):
            return f"sqlite:///{Path(rel).resolve()}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    rel = url[len("sqlite:///") :]
    if not rel or rel.startswith(":"):
        return None
    return Path(rel)


def _env(name: str, **kwargs: Any) -> Any:
    return Field(validation_alias=AliasChoices(PREFIX + name.upper(), LEGACY_PREFIX + name.upper()), **kwargs)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    database_url: str = _env("database_url", default_factory=default_database_url)
    public_url: str | None = _env("public_url", default=None, description="the address installers point proxies at")
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = _env(
        "allowed_hosts", default=(), description="Host header names an installer may be rendered for (comma list)")
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = _env(
        "trusted_proxies", default=(),
        description="addresses/networks of reverse proxies whose X-Forwarded-For is believed (comma list)")
    auth_failure_limit: int = _env("auth_failure_limit", default=20, ge=1)
    auth_failure_window: int = _env("auth_failure_window", default=60, ge=1)
    auth_tarpit_s: float = _env("auth_tarpit", default=1.0, ge=0,
                                description="delay before a 429 answer, so guesses from one address are slowed")
    db_threads: int = _env("db_threads", default=8, ge=1)
    secrets_key_file: Path | None = _env(
        "secrets_key_file", default=None, description="key for config secrets at rest (default: beside the database)")
    signing_key_file: Path | None = _env(
        "signing_key_file", default=None,
        description="Ed25519 keys that sign served configs (default: beside the secrets key file)")
    default_image: str = _env("default_image", default="ghcr.io/flagee-cloud/flageemonitor-client:latest")
    default_runtime_name: str = _env("default_runtime_name", default="flageemonitor")
    default_container_root: str = _env("default_container_root", default="/flageemonitor")
    default_timezone: str = _env("default_timezone", default="America/Sao_Paulo")
    watchtower_image: str = _env("watchtower_image", default="nickfedor/watchtower:1.20.2")  # the installers' own
    watchtower_interval: int = _env("watchtower_interval", default=300, ge=1)
    # HTTP guards (see server.guard): limits a client cannot push the server past
    max_header_bytes: int = _env("max_header_bytes", default=32 * 1024, ge=1024)
    max_headers: int = _env("max_headers", default=100, ge=8)
    header_timeout: float = _env("header_timeout", default=10.0, gt=0)
    max_connections_per_address: int = _env("max_connections_per_address", default=64, ge=1)
    # fleet: run reports kept, web sign-in
    run_retention_days: float = _env("run_retention_days", default=90, gt=0,
                                     description="run reports older than this are pruned")
    run_retention_rows: int = _env("run_retention_rows", default=1_000_000, ge=1,
                                   description="at most this many run reports kept per network")
    retention_interval: float = _env("retention_interval", default=3600, gt=0,
                                     description="seconds between background prunes")
    session_hours: float = _env("session_hours", default=12, gt=0, description="web sign-in lifetime")
    login_lockout_attempts: int = _env("login_lockout_attempts", default=5, ge=1,
                                       description="failed sign-ins in a row that lock an account")
    login_lockout_seconds: int = _env("login_lockout_seconds", default=900, ge=1)

    @field_validator("*", mode="before")
    @classmethod
    def _unquote(cls, value: Any) -> Any:
        return strip_quotes(value) if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r}: expected http(s)://host[:port]")
        return value.rstrip("/")

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in value:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)) if "/" in item else
                           str(ipaddress.ip_address(item)))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return tuple(out)

    @model_validator(mode="after")
    def _key_beside_database(self) -> Settings:
        if self.secrets_key_file is None:
            db_file = sqlite_path(self.database_url)
            base = db_file.parent if db_file is not None else Path.cwd()
            object.__setattr__(self, "secrets_key_file", (base / SECRETS_KEY_FILE).resolve())
        if self.signing_key_file is None:
            object.__setattr__(self, "signing_key_file", self.key_file.parent / SIGNING_KEY_FILE)
        return self

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The environment's settings; keyword arguments (CLI options) win."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    @property
    def key_file(self) -> Path:
        assert self.secrets_key_file is not None
        return self.secrets_key_file

    @property
    def signing_file(self) -> Path:
        assert self.signing_key_file is not None
        return self.signing_key_file
