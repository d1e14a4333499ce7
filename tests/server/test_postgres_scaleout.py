"""Several server processes against one PostgreSQL, and a PostgreSQL outage under a live server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.server import ControlPlane

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _fresh_get(url: str, **kwargs: Any) -> httpx.Response:
    """A new connection per request, so uvicorn's workers share the load."""
    with httpx.Client(timeout=10) as client:
        return client.get(url, **kwargs)


def test_tokens_and_rate_limit_are_consistent_across_server_processes(
    postgres: PostgresCluster, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    url = postgres.create_database()
    env = {"FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "6", "FLAGEEMONITOR_AUTH_FAILURE_WINDOW": "300"}
    a = control_plane_factory(database_url=url, workers=2, env=env)
    b = control_plane_factory(database_url=url, seed=False, env=env)
    b.rede, b.client = a.rede, a.client
    servers = [a, b]

    token, token_id = a.issue_token_with_id()
    for i in range(8):  # alternating servers, new connections: both of a's workers and b
        r = _fresh_get(servers[i % 2].config_url, headers=a.headers(token))
        assert r.status_code == 200 and r.json()["PARAM_REDE"] == a.rede
    version = a.set_config({"max_threads": 3})
    for i in range(4):
        assert _fresh_get(servers[i % 2].config_url, headers=a.headers(token)).json()["CONFIG_VERSION"] == version
    a.revoke_token(token_id)
    for i in range(8):  # revocation is seen at once by every process: no token cache survives it
        assert _fresh_get(servers[i % 2].config_url, headers=a.headers(token)).status_code == 403

    bad = "fmt_" + "x" * 43
    statuses = [_fresh_get(servers[i % 2].config_url, headers=a.headers(bad)).status_code for i in range(6)]
    assert statuses == [401] * 6  # six failures, split between both servers, fill one shared budget
    for i in range(4):  # the shared budget is spent: every process refuses further bad tokens
        limited = _fresh_get(servers[i % 2].config_url, headers=a.headers(bad))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        # while a valid token from the same address is still served by both
        assert _fresh_get(servers[i % 2].config_url, headers=a.headers(a.token)).status_code == 200

    metrics = _fresh_get(a.url + "/metrics").text  # multiprocess mode: one view over both workers
    assert 'flageemonitor_http_requests_total{method="GET",route="/api/ingest/bot/config",status="200"}' in metrics


def test_health_is_503_while_postgres_is_down_and_recovers(
    postgres_cluster_factory: Callable[[], PostgresCluster], control_plane_factory: Callable[..., ControlPlane]
) -> None:
    cluster = postgres_cluster_factory()
    cp = control_plane_factory(database_url=cluster.create_database())
    assert httpx.get(cp.url + "/health").json()["database"] == "ok"
    cluster.stop()
    start = time.monotonic()
    for path in ("/health", "/api/bootstrap/health"):
        r = httpx.get(cp.url + path, timeout=20)
        assert r.status_code == 503
        assert r.json()["database"] == "unreachable"
    assert time.monotonic() - start < 15  # a dead database fails probes fast, not after minutes
    cluster.start()
    deadline = time.monotonic() + 20
    while httpx.get(cp.url + "/health", timeout=20).status_code != 200:
        assert time.monotonic() < deadline, "server did not recover after PostgreSQL came back"
        time.sleep(0.2)
    assert httpx.get(cp.config_url, headers=cp.headers()).status_code == 200
