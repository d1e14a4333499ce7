"""Retention: days and rows per network, in small batches, in the background and from the CLI."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from flageemonitor.server.core.config import Settings, normalize_database_url
from flageemonitor.server.core.db import make_engine
from flageemonitor.server.models import EndpointStatus, Proxy, ProxyLastRun, Run
from flageemonitor.server.services import retention
from tests.server.conftest import Api, make_api
from tests.server.fleet_bodies import checkin, host, run_report
from tests.support.waiting import wait_until

RUNS = "/api/ingest/bot/runs"


def _runs(api: Api) -> list[str]:
    with api.plane.session() as s:
        return list(s.scalars(select(Run.run_uid).order_by(Run.id)))


def _post_runs(api: Api, proxy: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        body = run_report(proxy, [host(f"TESTNET-LOJA001-PDV{i:03d}")])
        assert api.client.post(RUNS, json=body, headers=api.headers()).status_code == 201
        ids.append(body["run_id"])
    return ids


def test_prune_keeps_the_newest_rows_per_network_in_small_batches(api: Api) -> None:
    ids = _post_runs(api, str(uuid.uuid4()), 7)
    engine = make_engine(normalize_database_url(api.plane.database_url))
    try:
        settings = Settings(database_url=normalize_database_url(api.plane.database_url), run_retention_rows=3)
        done = retention.prune(engine, settings, datetime.now(UTC), batch=2)
    finally:
        engine.dispose()
    assert done is not None and done.runs == 4
    assert _runs(api) == ids[-3:]


def test_prune_removes_old_runs_silent_proxies_and_stale_endpoint_states(api: Api) -> None:
    old_proxy, live_proxy = str(uuid.uuid4()), str(uuid.uuid4())
    old_runs = _post_runs(api, old_proxy, 2)
    api.client.post("/api/ingest/bot/checkin", json=checkin(live_proxy), headers=api.headers())
    recent = _post_runs(api, live_proxy, 1)
    long_ago = datetime.now(UTC) - timedelta(days=91)
    with api.plane.session() as s:
        s.execute(update(Run).where(Run.run_uid.in_(old_runs)).values(received_at=long_ago))
        s.execute(update(Proxy).where(Proxy.proxy_uid == old_proxy).values(last_seen=long_ago))
        s.execute(update(EndpointStatus).where(EndpointStatus.run_uid.in_(old_runs)).values(finished_at=long_ago))
    result = api.plane.admin("db", "prune")
    assert result.returncode == 0, result.stderr
    # PDV000's state came from the recent run since; only PDV001's is stale
    assert "removed 2 run reports, 1 proxies, 1 endpoint states" in result.stdout
    assert _runs(api) == recent
    with api.plane.session() as s:
        assert list(s.scalars(select(Proxy.proxy_uid))) == [live_proxy]
        assert s.scalar(select(func.count()).select_from(ProxyLastRun)) == 1
        assert list(s.execute(select(EndpointStatus.host, EndpointStatus.run_uid))) == [
            ("TESTNET-LOJA001-PDV000", recent[0])]


def test_the_server_prunes_in_the_background_while_it_keeps_answering(api: Api) -> None:
    ids = _post_runs(api, str(uuid.uuid4()), 5)
    with make_api(api.plane, run_retention_rows=2, retention_interval=0.2) as client:
        app = client.app
        wait_until(lambda: _runs(api) == ids[-2:], 30, "the background prune to keep the 2 newest runs")
        assert client.get("/health").status_code == 200
        body = run_report(str(uuid.uuid4()), [host("TESTNET-LOJA009-PDV201")])
        assert client.post(RUNS, json=body, headers=api.headers()).status_code == 201
        wait_until(lambda: app.state.pruner.passes >= 2, 30, "another prune pass")  # type: ignore[attr-defined]
    assert len(_runs(api)) == 2
