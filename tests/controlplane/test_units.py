"""The proxy's reporting parts on their own: bodies within the contract's bounds and redacted,
where reports go, what an answer means, the outbox queues, the proxy id."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import random
import string
import threading
import time
from pathlib import Path

import pytest

from flageemonitor.core.fleet_contract import MAX_BODY_BYTES, MAX_HOSTS, CheckIn, RunReportBody
from flageemonitor.core.redact import REDACTOR
from flageemonitor.core.results import HostResult, RunReport, Status
from flageemonitor.proxy.controlplane import bodies, identity, outbox
from flageemonitor.proxy.controlplane.sender import classify, target_from_env
from flageemonitor.proxy.spool import Spool, consumer_lock, spool_path
from tests.support.waiting import wait_until

SECRET = "ssh-Secret-pa55word"


def _report(hosts: list[HostResult], **local: object) -> RunReport:
    return RunReport(requested="pdv_test_connection", canonical="test_endpoint_connection", provider="arius",
                     action_version="1.0.0", dry_run=False, hosts=hosts, started_at="2026-03-01T10:00:00+00:00",
                     local=dict(local) if local else None)


def test_a_run_body_is_redacted_bounded_and_accepted_by_the_contract() -> None:
    REDACTOR.add(SECRET)
    hosts = [
        HostResult("REDE-LOJA001-PDV201", "10.0.0.1", Status.OK, duration_s=1.5, data={"changed": True}),
        HostResult("REDE-LOJA001-PDV202", "10.0.0.2", Status.AUTH_FAILED,
                   detail=f"login refused for root with {SECRET}; token=abc123 " + "x" * 2000),
        HostResult("REDE-LOJA001-PDV203", "10.0.0.3", Status.SKIPPED_ROLLOUT),
        HostResult("REDE-LOJA001-PDV204", "10.0.0.4", Status.BLOCKED_COMPAT),
    ]
    body = bodies.run_body(_report(hosts, ok=False, detail=f"checked with {SECRET}", checks=[1, 2]),
                           proxy_id="p1", run_id="r1", trigger="manual")
    RunReportBody.model_validate(body)
    text = json.dumps(body)
    assert SECRET not in text and "abc123" not in text
    assert body["summary"] == {"total": 4, "ok": 1, "changed": 1, "failed": 0, "unreachable": 0, "auth_failed": 1,
                               "timeout": 0, "skipped": 1, "blocked": 1, "planned": 0}
    assert len(body["hosts"][1]["detail"]) == 500
    assert body["local"] == {"ok": False, "detail": "checked with ***"}
    assert body["trigger"] == "manual" and body["action"]["requested"] == "pdv_test_connection"


def test_a_staged_run_that_its_rule_stopped_says_why_in_its_error() -> None:
    hosts = [HostResult("REDE-LOJA001-PDV201", "10.0.0.1", Status.FAILED, detail="exit 1"),
             HostResult("REDE-LOJA001-PDV202", "10.0.0.2", Status.SKIPPED, detail="not contacted: stopped")]
    reason = "the run stopped after batch 1 of 2: 1 of 1 hosts attempted failed (100%), more than 0"
    stopped = _report(hosts)
    stopped.staging, stopped.stopped_after_batch = {"stopped_after_batch": 1, "stop_reason": reason}, 1
    body = RunReportBody.model_validate(bodies.decode(bodies.encode(bodies.run_body(
        stopped, proxy_id="p" * 8, run_id="r" * 8, trigger="manual"))))
    assert body.error == reason and body.summary.skipped == 1
    finished = _report(hosts[:1])
    finished.staging = {"stopped_after_batch": None, "stop_reason": ""}
    assert bodies.run_body(finished, proxy_id="p" * 8, run_id="r" * 8, trigger="manual")["error"] is None
    given = bodies.run_body(stopped, proxy_id="p" * 8, run_id="r" * 8, trigger="manual", error="inventory gone")
    assert given["error"] == "inventory gone"


def test_a_run_over_5000_hosts_keeps_every_count_and_its_failures_first() -> None:
    hosts = [HostResult(f"H{i:05d}", "10.0.0.1", Status.FAILED if i % 1000 == 999 else Status.OK)
             for i in range(MAX_HOSTS + 500)]
    body = bodies.run_body(_report(hosts), proxy_id="p", run_id="r", trigger="schedule")
    assert body["summary"]["total"] == MAX_HOSTS + 500 and body["summary"]["failed"] == 5
    assert len(body["hosts"]) == MAX_HOSTS
    assert [h["host"] for h in body["hosts"][:5]] == ["H00999", "H01999", "H02999", "H03999", "H04999"]


def test_the_largest_report_fits_the_wire_bound_compressed() -> None:
    rng = random.Random(7)
    noise = string.ascii_letters + string.digits
    hosts = [HostResult(f"REDE-LOJA{i // 100:03d}-PDV{i % 100:03d}", "10.0.0.1", Status.FAILED,
                        detail="".join(rng.choices(noise, k=500))) for i in range(MAX_HOSTS)]
    body = bodies.run_body(_report(hosts), proxy_id="p", run_id="r", trigger="schedule")
    wire = bodies.encode(body)
    assert wire.startswith(bodies.GZIP_MAGIC) and len(wire) <= MAX_BODY_BYTES
    sent = json.loads(gzip.decompress(wire))
    assert sent["summary"]["total"] == MAX_HOSTS and len(sent["hosts"]) == MAX_HOSTS
    RunReportBody.model_validate(sent)
    small = bodies.encode(bodies.run_body(_report(hosts[:2]), proxy_id="p", run_id="r2", trigger="schedule"))
    assert small.startswith(b"{")  # a small body travels as plain JSON


def test_a_checkin_body_is_one_redacted_line() -> None:
    REDACTOR.add(SECRET)
    body = bodies.checkin_body(proxy_id="5b8e2a4c-7d0f-4a43-9f5e-0c1d2e3f4a5b", hostname="h", image_version="1.2.3",
                               image_digest=None, config_version=3, started_at="2026-03-01T10:00:00+00:00",
                               uptime_s=12.34, spool_depth=2, last_error=f"update-config:\nrefused {SECRET}")
    assert body["last_error"] == "update-config: refused ***"
    CheckIn.model_validate(body)


@pytest.mark.parametrize(("env", "url"), [
    ({"FLAGEEMONITOR_API_BASE": "https://cp.example/api/ingest/"}, "https://cp.example/api/ingest/bot/runs"),
    ({"ARIUSMONITOR_API_URL": '"https://cp.example/api/ingest"'}, "https://cp.example/api/ingest/bot/runs"),
    ({"FLAGEEMONITOR_CONFIG_URL": "https://cp.example:8443/x/bot/config?k=v"}, "https://cp.example:8443/x/bot/runs?k=v"),
    ({"FLAGEEMONITOR_CONFIG_URL": "https://other/static/config_bot.json",
      "FLAGEEMONITOR_API_BASE": "https://cp.example/api/ingest"}, "https://cp.example/api/ingest/bot/runs"),
])
def test_reports_go_where_the_config_comes_from(env: dict[str, str], url: str) -> None:
    target = target_from_env({**env, "FLAGEEMONITOR_TOKEN": "fmt_abcdefgh12345678", "FLAGEEMONITOR_REDE": "R1"})
    assert target is not None and target.url("runs") == url and target.rede == "R1"
    assert "fmt_" not in repr(target)


@pytest.mark.parametrize("env", [
    {"FLAGEEMONITOR_API_BASE": "https://cp.example/api/ingest"},  # no token
    {"FLAGEEMONITOR_TOKEN": "fmt_abcdefgh12345678"},  # nowhere to send
    {"FLAGEEMONITOR_TOKEN": "fmt_abcdefgh12345678", "FLAGEEMONITOR_API_BASE": "ftp://cp.example/"},
    {"FLAGEEMONITOR_TOKEN": "fmt_abcdefgh12345678", "FLAGEEMONITOR_API_BASE": "https://cp.example/api/ingest",
     "FLAGEEMONITOR_REPORTING": "false"},
])
def test_no_target_without_a_url_and_a_token_or_when_turned_off(env: dict[str, str]) -> None:
    assert target_from_env(env) is None


@pytest.mark.parametrize(("status", "body", "retry_after", "kind"), [
    (201, b'{"run_id": "r"}', None, "delivered"),
    (200, b'{"run_id": "r", "duplicate": true}', None, "delivered"),
    (403, b'{"error": "scope_denied", "message": "token lacks the scope"}', None, "retry"),
    (401, b'{"error": "token_rejected", "message": "token rejected"}', None, "retry"),
    (429, b'{"error": "too_many_failures", "message": "slow down"}', "30", "retry"),
    (503, b'{"error": "store_failed", "message": "later"}', "30", "retry"),
    (404, b'{"detail": "Not Found"}', None, "retry"),
    (400, b'{"error": "network_required", "message": "pass ?rede="}', None, "retry"),
    (400, b'{"error": "invalid_json", "message": "body is not valid JSON"}', None, "refused"),
    (422, b'{"error": "invalid_body", "message": "hosts: too long"}', None, "refused"),
    (413, b'{"error": "body_too_large", "message": "over"}', None, "refused"),
])
def test_what_an_answer_means(status: int, body: bytes, retry_after: str | None, kind: str) -> None:
    answer = classify(status, "Reason", body, retry_after, "https://cp/bot/runs")
    assert answer.kind == kind
    if retry_after:
        assert answer.retry_after == float(retry_after)
    if kind != "delivered":
        assert "https://cp/bot/runs" in answer.message and str(status) in answer.message


def test_a_new_checkin_replaces_the_waiting_one_and_depth_counts_what_waits(tmp_path: Path) -> None:
    assert outbox.depth(tmp_path) == 0 and not spool_path(tmp_path).exists()  # nothing created to say so
    for n in range(3):
        outbox.put_checkin(tmp_path, {"proxy_id": "p", "n": n})
    outbox.put_run(tmp_path, {"run_id": "a"})
    outbox.put_run(tmp_path, {"run_id": "b"})
    with Spool(spool_path(tmp_path)) as spool:
        checkins = spool.peek(outbox.CHECKIN_QUEUE)
        runs = spool.peek(outbox.RUNS_QUEUE)
        spool.put("collect_coupons@10.0.0.1", [(b"[]", 0)])
        spool.put("collect_coupons@10.0.0.1.rejected", [(b"[]", 0)])
    assert [bodies.decode(i.body)["n"] for i in checkins] == [2]
    assert [bodies.decode(i.body)["run_id"] for i in runs] == ["a", "b"]
    assert outbox.depth(tmp_path) == 3  # two reports and a BI batch; not the check-in, not the rejected


def _make_id(state: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(identity.proxy_id(Path(state)))


def test_the_proxy_id_is_created_once_and_agreed_by_racing_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_make_id, args=(str(tmp_path), out)) for _ in range(6)]
    for p in procs:
        p.start()
    ids = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=60)
    assert len(ids) == 1
    (only,) = ids
    assert identity.proxy_id(tmp_path) == only  # read back, not re-created
    assert (tmp_path / identity.PROXY_ID_NAME).read_text().strip() == only
    assert not list(tmp_path.glob(".proxy-id.tmp-*"))


def test_a_malformed_proxy_id_is_replaced_once(tmp_path: Path) -> None:
    (tmp_path / identity.PROXY_ID_NAME).write_text("not-a-uuid\n")
    new = identity.proxy_id(tmp_path)
    assert new != "not-a-uuid" and identity.proxy_id(tmp_path) == new


def test_image_identity_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAGEEMONITOR_IMAGE_VERSION", "2.4.1")
    monkeypatch.setenv("FLAGEEMONITOR_IMAGE_DIGEST", "sha256:" + "ab" * 32)
    assert identity.image_version() == "2.4.1" and identity.image_digest() == "sha256:" + "ab" * 32
    monkeypatch.setenv("FLAGEEMONITOR_IMAGE_DIGEST", "latest; rm -rf /")
    assert identity.image_digest() is None


def test_a_run_waits_for_the_background_drain_to_let_go_but_not_for_another_run(tmp_path: Path) -> None:
    released = threading.Event()

    def hold(role: str, seconds: float) -> None:
        with consumer_lock(tmp_path, "q@1", role=role) as held:
            assert held
            released.wait(seconds)

    lock_file = tmp_path / "locks" / "q@1.lock"
    drain = threading.Thread(target=hold, args=("backlog", 0.5))
    drain.start()
    wait_until(lambda: lock_file.exists() and lock_file.read_text() == "backlog", 10, "the drain to hold the lock")
    t0 = time.monotonic()
    with consumer_lock(tmp_path, "q@1", wait_for="backlog", wait_s=30) as held:
        waited = time.monotonic() - t0
        assert held
    drain.join()
    assert waited < 30

    run = threading.Thread(target=hold, args=("run", 30))
    run.start()
    try:
        wait_until(lambda: lock_file.read_text() == "run", 10, "the run to hold the lock")
        t0 = time.monotonic()
        with consumer_lock(tmp_path, "q@1", wait_for="backlog", wait_s=30) as held:
            assert not held
        assert time.monotonic() - t0 < 5  # another run: gives up at once (after the role grace)
    finally:
        released.set()
        run.join()
