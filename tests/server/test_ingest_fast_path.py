"""Check-ins and run reports taken before the framework, on SQLite and PostgreSQL.

A token's first report goes through the full route, which remembers the authorization; the next
ones are stored by the fast path (seen in its counter). Every change is made through the service
layer on a connection of its own (as the CLI does), and the very next request must see it. Each
unusual request must get the route's own answer: the same request with an extra query parameter
always takes the full path, which is the reference.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from flageemonitor.core.fleet_contract import MAX_BODY_BYTES
from flageemonitor.server.models import Proxy, Run
from tests.server.conftest import Api
from tests.server.fleet_bodies import checkin, host, run_report
from tests.support.waiting import wait_until

CHECKIN = "/api/ingest/bot/checkin"
RUNS = "/api/ingest/bot/runs"
FULL = {"full": "1"}  # any query but ?rede= sends the request through the route


def _fast(path: str) -> float:
    return REGISTRY.get_sample_value("flageemonitor_ingest_fast_path_total", {"route": path}) or 0.0


def _runs(api: Api, run_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Run)
    if run_id is not None:
        stmt = stmt.where(Run.run_uid == run_id)
    with api.plane.session() as s:
        return int(s.scalar(stmt) or 0)


def _report(n_hosts: int = 3, **fields: Any) -> dict[str, Any]:
    return run_report(str(uuid.uuid4()), [host(f"TESTNET-LOJA001-PDV{200 + i}") for i in range(n_hosts)], **fields)


def _post(api: Api, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    response: httpx.Response = api.client.post(path, headers={**api.headers(token), **kwargs.pop("headers", {})},
                                               **kwargs)
    return response


def _warm(api: Api, token: str | None = None) -> None:
    """Two reports: the first through the route, the second from memory."""
    assert _post(api, RUNS, token, json=_report()).status_code == 201
    before = _fast(RUNS)
    assert _post(api, RUNS, token, json=_report()).status_code == 201
    assert _fast(RUNS) == before + 1, "the second report of a token did not take the fast path"


def _answer(r: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    return r.status_code, {k: v for k, v in r.headers.items() if k != "date"}, r.content


def test_fast_answers_and_stored_rows_are_the_routes_own(api: Api) -> None:
    _warm(api)
    fast_body, full_body = _report(), _report()
    before = _fast(RUNS)
    fast = _post(api, RUNS, json=fast_body)
    full = _post(api, RUNS, json=full_body, params=FULL)
    assert _fast(RUNS) == before + 1
    assert fast.status_code == full.status_code == 201
    assert fast.json() == {"run_id": fast_body["run_id"]} and full.json() == {"run_id": full_body["run_id"]}
    assert {k: v for k, v in fast.headers.items() if k not in ("date", "content-length")} == \
        {k: v for k, v in full.headers.items() if k not in ("date", "content-length")}
    with api.plane.session() as s:
        rows = {r.run_uid: r for r in s.scalars(select(Run).where(Run.run_uid.in_([fast_body["run_id"],
                                                                                   full_body["run_id"]])))}
    a, b = rows[fast_body["run_id"]], rows[full_body["run_id"]]
    columns = ("network_id", "total", "ok", "failed", "canonical", "trigger", "dry_run")
    assert [getattr(a, c) for c in columns] == [getattr(b, c) for c in columns]


def test_a_report_sent_twice_is_stored_once_on_either_path(api: Api) -> None:
    _warm(api)
    body = _report()
    before = _fast(RUNS)
    first = _post(api, RUNS, json=body)
    again = _post(api, RUNS, json=body)
    through_route = _post(api, RUNS, json=body, params=FULL)
    assert _fast(RUNS) == before + 2
    assert (first.status_code, first.json()) == (201, {"run_id": body["run_id"]})
    assert _answer(again) == _answer(through_route)
    assert (again.status_code, again.json()) == (200, {"run_id": body["run_id"], "duplicate": True})
    assert _runs(api, body["run_id"]) == 1


def test_a_revoked_token_is_refused_on_the_very_next_report(api: Api) -> None:
    token, token_id = api.plane.issue_token_with_id()
    _warm(api, token)
    stored = _runs(api)
    api.plane.revoke_token(token_id)
    body = _report()
    r = _post(api, RUNS, token, json=body)
    assert r.status_code == 403 and r.json()["error"] == "token_revoked"
    r = _post(api, CHECKIN, token, json=checkin())
    assert r.status_code == 403 and r.json()["error"] == "token_revoked"
    assert _runs(api) == stored and _runs(api, body["run_id"]) == 0
    _warm(api)  # the network's other token is still taken


def test_after_any_change_the_next_report_is_authorized_again_then_remembered(api: Api) -> None:
    _warm(api)
    api.plane.set_config({"PARAM_PROVIDER": "arius", "max_threads": 9})  # moves the change generation
    before = _fast(RUNS)
    body = _report()
    assert _post(api, RUNS, json=body).status_code == 201
    assert _fast(RUNS) == before, "a report was taken on an authorization older than the last change"
    assert _runs(api, body["run_id"]) == 1
    assert _post(api, RUNS, json=_report()).status_code == 201
    assert _fast(RUNS) == before + 1


@pytest.mark.slow
def test_an_expired_token_is_refused_though_its_authorization_is_remembered(api: Api) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=20)  # room for the warm-up on a loaded machine
    token = api.plane.issue_token(expires_at=expires)
    _warm(api, token)
    def refused() -> Any:
        sent = datetime.now(UTC)
        r = _post(api, RUNS, token, json=_report(1))
        assert r.status_code != 201 or sent < expires, "a report stored for a request sent after the token expired"
        return r if r.status_code != 201 else None

    r = wait_until(refused, 90, "the token's expiry to be enforced", interval=0.2)
    assert r.status_code == 403 and r.json()["error"] == "token_expired"


def test_malformed_bodies_get_the_routes_errors_and_store_nothing(api: Api) -> None:
    _warm(api)
    stored = _runs(api)
    too_long = _report(1)
    too_long["hosts"][0]["detail"] = "x" * 501
    bad: list[dict[str, Any]] = [
        {"content": b"{not json"},
        {"json": too_long},
        {"json": {**_report(), "trigger": "cron"}},
        {"json": {"proxy_id": "p"}},
        {"content": gzip.compress(json.dumps(_report()).encode())[:-20], "headers": {"Content-Encoding": "gzip"}},
        {"content": gzip.compress(b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}'),
         "headers": {"Content-Encoding": "gzip"}},
        {"content": json.dumps(_report()).encode(), "headers": {"Content-Encoding": "br"}},
    ]
    before = _fast(RUNS)
    for case in bad:
        headers = {"Content-Type": "application/json", **case.get("headers", {})}
        payload = {k: v for k, v in case.items() if k != "headers"}
        fast = _post(api, RUNS, headers=headers, **payload)
        full = _post(api, RUNS, headers=headers, params=FULL, **payload)
        assert 400 <= fast.status_code < 500, (case, fast.text)
        assert _answer(fast) == _answer(full), case
    assert _fast(RUNS) == before
    assert _runs(api) == stored
    r = _post(api, CHECKIN, json={"hostname": "no id"})
    assert r.status_code == 422 and "proxy_id" in r.json()["message"]


def test_oversized_bodies_are_refused_before_they_are_read(api: Api) -> None:
    _warm(api)
    stored = _runs(api)
    huge = b'{"proxy_id": "' + b"p" * MAX_BODY_BYTES + b'"}'
    r = _post(api, RUNS, content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    r = _post(api, CHECKIN, content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert _runs(api) == stored


def test_other_tokens_and_requests_keep_the_routes_answers_and_failure_budget(api: Api) -> None:
    _warm(api)
    body = _report()
    r = _post(api, RUNS, "fmt_" + "Q" * 43, json=body)
    assert r.status_code == 401 and r.json()["error"] == "token_rejected"
    r = api.client.post(RUNS, json=body)
    assert r.status_code == 401 and r.json()["error"] == "token_missing"
    r = _post(api, RUNS, json=body, params={"rede": "OTHER"})
    assert r.status_code == 403 and r.json()["error"] == "network_denied"
    limit = api.settings.auth_failure_limit
    codes = [_post(api, RUNS, "fmt_" + "R" * 43, json=body).status_code for _ in range(limit)]
    assert codes[-1] == 429, codes  # the failure budget of the address is the route's
    assert _runs(api, body["run_id"]) == 0
    # a body that is not declared JSON is still the route's to judge (it parses it as before)
    before = _fast(RUNS)
    r = _post(api, RUNS, content=json.dumps(body).encode(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 201 and _fast(RUNS) == before
    assert _runs(api, body["run_id"]) == 1


def test_checkins_from_memory_answer_the_current_heartbeat_interval(api: Api) -> None:
    api.plane.set_config({"PARAM_PROVIDER": "arius", "PARAM_HEARTBEAT_INTERVAL": 15})
    proxy = str(uuid.uuid4())
    assert _post(api, CHECKIN, json=checkin(proxy, config_version=1)).json()["heartbeat_interval_s"] == 15
    before = _fast(CHECKIN)
    fast = _post(api, CHECKIN, json=checkin(proxy, config_version=2, spool_depth=4))
    assert _fast(CHECKIN) == before + 1
    assert fast.status_code == 200 and fast.json()["heartbeat_interval_s"] == 15
    full = _post(api, CHECKIN, json=checkin(proxy, config_version=2, spool_depth=4), params=FULL)
    assert fast.json().keys() == full.json().keys()
    with api.plane.session() as s:
        row = s.scalars(select(Proxy).where(Proxy.proxy_uid == proxy)).one()
        assert (row.config_version, row.spool_depth) == (2, 4)
    api.plane.set_config({"PARAM_PROVIDER": "arius", "PARAM_HEARTBEAT_INTERVAL": 45})
    assert _post(api, CHECKIN, json=checkin(proxy)).json()["heartbeat_interval_s"] == 45
    before = _fast(CHECKIN)
    assert _post(api, CHECKIN, json=checkin(proxy)).json()["heartbeat_interval_s"] == 45
    assert _fast(CHECKIN) == before + 1
