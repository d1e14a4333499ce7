"""Server suite fixtures: the same tests run on SQLite (fast) and PostgreSQL (slow, postgres)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    # starlette suggests a successor package to httpx for its test client; httpx is what we ship
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flageemonitor.server.app import create_app
from flageemonitor.server.core.config import Settings, normalize_database_url
from tests.fixtures.server import ControlPlane


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.slow, pytest.mark.postgres])])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    cluster = request.getfixturevalue("postgres")
    url: str = cluster.create_database()
    return url


def _has_seen(app: FastAPI, generation: int) -> bool:
    """The app's change watch has been told of `generation` or has none (then the full path answers)."""
    watch = app.state.poll.watch
    stamp = watch.stamp() if watch is not None else None
    return stamp is None or stamp >= generation


@dataclass
class Api:
    """The real application in-process (the HTTP transport is the only shortcut) over a seeded database."""

    plane: ControlPlane
    client: TestClient
    settings: Settings

    def headers(self, token: str | None = None) -> dict[str, str]:
        return self.plane.headers(token)


def make_api(plane: ControlPlane, address: str = "203.0.113.7", **overrides: object) -> TestClient:
    overrides.setdefault("auth_tarpit_s", 0)
    overrides.setdefault("secrets_key_file", plane.key_file)
    overrides.setdefault("allowed_hosts", ("cp.test",))
    settings = Settings(database_url=normalize_database_url(plane.database_url), **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings), client=(address, 40000), base_url="http://cp.test")


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    plane = ControlPlane(tmp_path / "plane", database_url=db_url)
    settings = Settings(database_url=normalize_database_url(db_url), auth_failure_limit=5, auth_tarpit_s=0,
                        secrets_key_file=plane.key_file, allowed_hosts=("cp.test",))
    app = create_app(settings)
    plane.watchers.append(lambda generation: _has_seen(app, generation))
    with TestClient(app, client=("203.0.113.7", 40000), base_url="http://cp.test") as client:
        yield Api(plane=plane, client=client, settings=settings)
    app.state.engine.dispose()
