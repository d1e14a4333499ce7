"""Health, metrics and the OpenAPI description."""

from __future__ import annotations

from pathlib import Path

from flageemonitor import __version__
from tests.fixtures.server import ControlPlane
from tests.server.conftest import Api, make_api


def test_health_reports_version_and_database(api: Api) -> None:
    for path in ("/health", "/api/bootstrap/health"):
        r = api.client.get(path)
        assert r.status_code == 200
        assert r.json() == {"status": "ok", "version": __version__, "database": "ok"}


def test_health_is_503_when_the_sqlite_database_cannot_be_opened(tmp_path: Path) -> None:
    plane = ControlPlane(tmp_path / "plane")
    plane.database_url = f"sqlite:///{tmp_path / 'missing-dir' / 'nothing.db'}"  # directory does not exist
    with make_api(plane) as client:
        for path in ("/health", "/api/bootstrap/health"):
            r = client.get(path)
            assert r.status_code == 503
            assert r.json() == {"status": "unavailable", "version": __version__, "database": "unreachable"}


def test_metrics_count_requests_by_route_and_auth_failures(api: Api) -> None:
    api.client.get("/api/ingest/bot/config", headers=api.headers())
    api.client.get("/api/ingest/bot/config", headers=api.headers("fmt_" + "Q" * 43))
    text = api.client.get("/metrics").text
    assert 'flageemonitor_http_requests_total{method="GET",route="/api/ingest/bot/config",status="200"}' in text
    assert 'flageemonitor_http_requests_total{method="GET",route="/api/ingest/bot/config",status="401"}' in text
    assert 'flageemonitor_auth_failures_total{reason="token_rejected"}' in text
    assert 'flageemonitor_http_request_duration_seconds_bucket{le="0.005",route="/api/ingest/bot/config"}' in text


def test_openapi_describes_both_token_headers_and_the_error_codes(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {s.get("name") for s in schemes.values() if s["type"] == "apiKey"} == {"X-Bot-Token"}
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    responses = spec["paths"]["/api/ingest/bot/config"]["get"]["responses"]
    assert {"200", "304", "401", "403", "429"} <= set(responses)
