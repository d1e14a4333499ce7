"""Proxy check-ins and run reports through the real app (contract v1), on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from flageemonitor.server.models import EndpointStatus, Proxy, ProxyLastRun, Run, as_utc
from flageemonitor.server.services.fleet_ingest import decode_hosts
from tests.server.conftest import Api
from tests.server.fleet_bodies import checkin, host, run_report

CHECKIN = "/api/ingest/bot/checkin"
RUNS = "/api/ingest/bot/runs"


def _count(api: Api, model: type) -> int:
    with api.plane.session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_checkin_upserts_the_proxy_and_answers_the_networks_heartbeat_interval(api: Api) -> None:
    api.plane.set_config({"PARAM_PROVIDER": "arius", "PARAM_HEARTBEAT_INTERVAL": 15})
    proxy = str(uuid.uuid4())
    before = datetime.now(UTC)
    r = api.client.post(CHECKIN, json=checkin(proxy, config_version=1), headers=api.headers())
    assert r.status_code == 200, r.text
    assert r.json()["heartbeat_interval_s"] == 15
    assert abs(datetime.fromisoformat(r.json()["server_time"]) - before) < timedelta(seconds=30)
    r = api.client.post(CHECKIN, json=checkin(proxy, config_version=2, spool_depth=7, last_error="disk\nfull"),
                        headers=api.headers())
    assert r.status_code == 200
    with api.plane.session() as s:
        rows = list(s.scalars(select(Proxy)))
        assert len(rows) == 1
        row = rows[0]
        assert (row.proxy_uid, row.config_version, row.spool_depth, row.last_error) == (proxy, 2, 7, "disk full")
        assert as_utc(row.first_seen) <= as_utc(row.last_seen)
        assert as_utc(row.last_seen) >= before - timedelta(seconds=1)


def test_heartbeat_interval_defaults_to_60_without_the_key(api: Api) -> None:
    r = api.client.post(CHECKIN, json=checkin(), headers=api.headers())
    assert r.json()["heartbeat_interval_s"] == 60


def test_run_report_is_stored_once_whatever_the_number_of_sends(api: Api) -> None:
    proxy = str(uuid.uuid4())
    body = run_report(proxy, [host("TESTNET-LOJA001-PDV201"), host("TESTNET-LOJA001-PDV202", "failed", "exit 3")])
    first = api.client.post(RUNS, json=body, headers=api.headers())
    assert first.status_code == 201, first.text
    assert first.json() == {"run_id": body["run_id"]}
    again = api.client.post(RUNS, json=body, headers=api.headers())
    assert again.status_code == 200
    assert again.json() == {"run_id": body["run_id"], "duplicate": True}
    assert _count(api, Run) == 1
    with api.plane.session() as s:
        run = s.scalar(select(Run))
        assert run is not None
        assert (run.total, run.ok, run.failed, run.trigger) == (2, 1, 1, "schedule")
        hosts = decode_hosts(run.hosts_z)
        assert [(h.host, h.status, h.detail) for h in hosts] == [
            ("TESTNET-LOJA001-PDV201", "ok", ""), ("TESTNET-LOJA001-PDV202", "failed", "exit 3")]
        # a report is a sign of life: the proxy exists even before its first check-in
        assert s.scalar(select(Proxy.proxy_uid)) == proxy
        status = {e.host: (e.status, e.store) for e in s.scalars(select(EndpointStatus))}
        assert status == {"TESTNET-LOJA001-PDV201": ("ok", 1), "TESTNET-LOJA001-PDV202": ("failed", 1)}
        last = s.scalar(select(ProxyLastRun))
        assert last is not None and (last.canonical, last.failures, last.run_uid) == ("diagnose_env", 1, body["run_id"])


def test_a_late_older_report_never_replaces_a_newer_state(api: Api) -> None:
    proxy = str(uuid.uuid4())
    now = datetime.now(UTC)
    newer = run_report(proxy, [host("TESTNET-LOJA002-PDV201", "ok")], finished_at=now)
    older = run_report(proxy, [host("TESTNET-LOJA002-PDV201", "unreachable", "no route")],
                       finished_at=now - timedelta(hours=1))
    for body in (newer, older):
        assert api.client.post(RUNS, json=body, headers=api.headers()).status_code == 201
    with api.plane.session() as s:
        assert s.scalar(select(EndpointStatus.status)) == "ok"
        assert s.scalar(select(ProxyLastRun.run_uid)) == newer["run_id"]
    assert _count(api, Run) == 2


def test_dry_and_manual_runs_are_kept_but_do_not_change_the_latest_state(api: Api) -> None:
    proxy = str(uuid.uuid4())
    real = run_report(proxy, [host("TESTNET-LOJA003-PDV201", "ok")], finished_at=datetime.now(UTC) - timedelta(1))
    dry = run_report(proxy, [host("TESTNET-LOJA003-PDV201", "planned")], dry_run=True)
    manual = run_report(proxy, [host("TESTNET-LOJA003-PDV201", "failed")], trigger="manual", action="pdv_test_sudo")
    for body in (real, dry, manual):
        assert api.client.post(RUNS, json=body, headers=api.headers()).status_code == 201
    with api.plane.session() as s:
        states = {(e.canonical, e.status) for e in s.scalars(select(EndpointStatus))}
        assert states == {("diagnose_env", "ok"), ("pdv_test_sudo", "failed")}
        assert [r.run_uid for r in s.scalars(select(ProxyLastRun))] == [real["run_id"]]
    assert _count(api, Run) == 3


def test_text_that_looks_secret_is_redacted_before_it_is_stored(api: Api) -> None:
    leaked = "fmt_" + "S" * 43
    body = run_report(str(uuid.uuid4()), [host("TESTNET-LOJA001-PDV201", "failed", f"curl -H 'X-Bot-Token: {leaked}'"
                                                                                     " password=hunter22")])
    assert api.client.post(RUNS, json=body, headers=api.headers()).status_code == 201
    with api.plane.session() as s:
        run = s.scalar(select(Run))
        assert run is not None
        detail = decode_hosts(run.hosts_z)[0].detail
        state = s.scalar(select(EndpointStatus.detail))
    for text in (detail, state):
        assert text is not None and leaked not in text and "hunter22" not in text
        assert "***" in text


def test_gzip_bodies_are_accepted_and_bombs_refused(api: Api) -> None:
    body = run_report(str(uuid.uuid4()), [host(f"TESTNET-LOJA001-PDV{i:03d}") for i in range(50)])
    packed = gzip.compress(json.dumps(body).encode())
    headers = {**api.headers(), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert api.client.post(RUNS, content=packed, headers=headers).status_code == 201
    bomb = gzip.compress(b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}')
    r = api.client.post(RUNS, content=bomb, headers=headers)
    assert r.status_code == 413 and "decompressed" in r.json()["message"]
    r = api.client.post(RUNS, content=packed[:-20], headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "bad_gzip"
    r = api.client.post(RUNS, content=packed, headers={**headers, "Content-Encoding": "br"})
    assert r.status_code == 415
    assert _count(api, Run) == 1


def test_bodies_out_of_bounds_get_a_named_error_and_store_nothing(api: Api) -> None:
    proxy = str(uuid.uuid4())
    too_long = run_report(proxy, [host("TESTNET-LOJA001-PDV201", "failed", "x" * 501)])
    r = api.client.post(RUNS, json=too_long, headers=api.headers())
    assert r.status_code == 422
    assert r.json()["message"].startswith("hosts.0.detail:")
    too_many = run_report(proxy, [host(f"H{i}") for i in range(5001)])
    r = api.client.post(RUNS, content=json.dumps(too_many).encode(), headers=api.headers())
    assert r.status_code in (413, 422)
    huge = b'{"proxy_id": "' + b"p" * (1024 * 1024) + b'"}'
    r = api.client.post(RUNS, content=huge, headers=api.headers())
    assert r.status_code == 413
    r = api.client.post(RUNS, content=b"{not json", headers=api.headers())
    assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    bad_trigger = run_report(proxy, [], trigger="cron")
    assert api.client.post(RUNS, json=bad_trigger, headers=api.headers()).status_code == 422
    r = api.client.post(CHECKIN, json={"hostname": "no id"}, headers=api.headers())
    assert r.status_code == 422 and "proxy_id" in r.json()["message"]
    assert _count(api, Run) == 0
    assert _count(api, Proxy) == 0


def test_tokens_without_report_write_or_for_another_network_are_refused(api: Api) -> None:
    body = run_report(str(uuid.uuid4()), [host("TESTNET-LOJA001-PDV201")])
    r = api.client.post(RUNS, json=body)
    assert r.status_code == 401 and r.json()["error"] == "token_missing"
    r = api.client.post(RUNS, json=body, headers=api.headers("fmt_" + "Q" * 43))
    assert r.status_code == 401
    read_only = api.plane.issue_token(scopes=["config:read"])
    for path, payload in ((RUNS, body), (CHECKIN, checkin())):
        r = api.client.post(path, json=payload, headers=api.headers(read_only))
        assert r.status_code == 403
        assert "report:write" in r.json()["message"]
    r = api.client.post(RUNS + "?rede=OTHER", json=body, headers=api.headers())
    assert r.status_code == 403 and r.json()["error"] == "network_denied"
    assert _count(api, Run) == 0
    assert api.client.post(RUNS, json=body, headers={"Authorization": f"Bearer {api.plane.token}"}).status_code == 201


def test_old_spelling_of_the_scope_is_accepted_when_issuing(api: Api) -> None:
    token = api.plane.issue_token(scopes=["reports:write"])
    assert api.client.post(CHECKIN, json=checkin(), headers=api.headers(token)).status_code == 200


def test_times_utc_cannot_hold_are_kept_at_its_edge_and_blank_names_refused(api: Api) -> None:
    """Every schema-valid time is accepted (the published schema allows year 1 at +05:04); a name
    that is only white space is refused the same way the schema refuses it."""
    proxy = str(uuid.uuid4())
    r = api.client.post(CHECKIN, json=checkin(proxy, started_at="0001-01-01T01:01:00+05:04",
                                              sent_at="9999-12-31T23:00:00-05:00"), headers=api.headers())
    assert r.status_code == 200, r.text
    with api.plane.session() as s:
        row = s.scalars(select(Proxy)).one()
        assert as_utc(row.started_at) == datetime.min.replace(tzinfo=UTC)
        assert as_utc(row.sent_at) == datetime.max.replace(tzinfo=UTC)
    early = run_report(proxy, [host("TESTNET-LOJA001-PDV201")])
    early.update(started_at="0001-01-01T00:00:00+01:00", finished_at="0001-01-01T00:30:00+01:00")
    assert api.client.post(RUNS, json=early, headers=api.headers()).status_code == 201
    for blank in (" ", "\u0085", "\u3000 "):
        r = api.client.post(RUNS, json=run_report(proxy, [host(blank)]), headers=api.headers())
        assert r.status_code == 422 and r.json()["message"].startswith("hosts.0.host:"), repr(blank)
    assert _count(api, Run) == 1
