"""The real daemon reports to a real control plane: check-ins, scheduled and manual run reports
from the sshd persona fleet, an outage (a server that hangs, then one that is gone) survived
without losing, reordering or repeating a report, and a token without `report:write`.

The daemon's cron clock runs faster (`FLAGEEMONITOR_CLOCK_SCALE`, a test hook); check-ins and
delivery run on real time, as in production.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import string
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from devtools.fleet import PERSONAS, Fleet
from devtools.processes import stop_group
from sqlalchemy import select

from flageemonitor.core.fleet_contract import MAX_HOSTS
from flageemonitor.core.results import HostResult, RunReport, Status
from flageemonitor.proxy.controlplane import bodies, identity, outbox
from flageemonitor.proxy.controlplane.bodies import decode
from flageemonitor.proxy.controlplane.outbox import RUNS_QUEUE
from flageemonitor.proxy.controlplane.sender import target_from_env
from flageemonitor.proxy.daemon.state import read_heartbeat, read_history
from flageemonitor.proxy.spool import Spool, spool_path
from tests.fixtures.server import ControlPlane, ControlPlaneFactory
from tests.fixtures.sshd import inventory
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reporting]

CLI = str(Path(sys.executable).with_name("flageemonitor"))
IMAGE_VERSION = "9.8.7-test"
# the defaults this test does not exercise stay off, so every run report is one we asked for
QUIET_DEFAULTS = {name: False for name in ("install_endpoint_agent", "collect_coupons", "collect_coupon_details",
                                           "collect_coupon_lv", "refresh_endpoint_printer", "shutdown_endpoint")}
EXPECTED = {p.host: p.expect_status for p in PERSONAS}


def config(inventory: Path, heartbeat: int, cron: str = "* * * * *", **extra: Any) -> dict[str, Any]:
    return {"PARAM_PROVIDER": "arius", "TIMEZONE": "UTC", "PARAM_INVENTORY": "file",
            "PARAM_INVENTORY_FILE": str(inventory), "PARAM_HEARTBEAT_INTERVAL": heartbeat,
            "PARAM_CRON_ACTIONS": {**QUIET_DEFAULTS, "test_endpoint_connection": cron},
            "ssh": {"timeout": 3, "command_timeout": 3, "host_key_policy": "pin"}, "max_threads": 20, **extra}


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    log: Path
    state: Path
    env: dict[str, str]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def runs(self) -> list[dict[str, Any]]:
        return [r for r in read_history(self.state) if r.get("action") == "test_endpoint_connection"
                and r.get("result") in ("ok", "failed", "error")]

    def spooled_runs(self) -> int:
        return len(self.spooled_run_ids())

    def spooled_run_ids(self) -> list[str]:
        with Spool(spool_path(self.state)) as spool:
            return [decode(i.body)["run_id"] for i in spool.peek(RUNS_QUEUE, 1000)]

    def proxy_id(self) -> str:
        return (self.state / "proxy-id").read_text().strip()


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Any]:
    started: list[Daemon] = []

    def start(plane: ControlPlane, *, token: str | None = None, scale: float = 30, state: Path | None = None,
              **extra: str) -> Daemon:
        state = state or tmp_path / f"state{len(started)}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGEEMONITOR_", "ARIUSMONITOR_"))}
        env.update({"FLAGEEMONITOR_STATE_DIR": str(state), "FLAGEEMONITOR_API_BASE": plane.api_base,
                    "FLAGEEMONITOR_TOKEN": token or plane.token, "FLAGEEMONITOR_REDE": plane.rede,
                    "FLAGEEMONITOR_CLOCK_SCALE": str(scale), "FLAGEEMONITOR_IMAGE_VERSION": IMAGE_VERSION,
                    "FLAGEEMONITOR_STOP_GRACE": "3", "PYTHONUNBUFFERED": "1", "TZ": "UTC", **extra})
        log = tmp_path / f"daemon{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([CLI, "daemon"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        d = Daemon(proc, log, state, env)
        started.append(d)
        return d

    yield start
    for d in started:
        stop_group(d.proc)


def proxy_rows(plane: ControlPlane) -> list[Any]:
    from flageemonitor.server.models import Proxy

    with plane.session() as s:
        return list(s.scalars(select(Proxy)))


def run_rows(plane: ControlPlane) -> list[Any]:
    from flageemonitor.server.models import Run

    with plane.session() as s:
        return list(s.scalars(select(Run).order_by(Run.id)))


def hosts_of(run: Any) -> dict[str, str]:
    doc = json.loads(zlib.decompress(run.hosts_z))
    hosts = doc if isinstance(doc, list) else doc["hosts"]
    return {h["host"]: h["status"] for h in hosts}


def test_checkins_and_scheduled_and_manual_reports_reach_the_server_with_per_host_statuses(
    control_plane_factory: ControlPlaneFactory, persona_fleet: Fleet, start_daemon: Any, tmp_path: Path
) -> None:
    heartbeat = 5
    plane = control_plane_factory(rede="FLEET",
                                  config=config(persona_fleet.inventory_path, heartbeat, cron="*/5 * * * *"))
    d = start_daemon(plane, scale=30)  # a tick every 10 s: a run of the whole fleet fits between ticks
    wait_until(lambda: (d.state / "config_bot.json").exists() or not d.alive(), 60, "the daemon's first config")
    got_config = time.monotonic()
    (proxy,) = wait_until(lambda: proxy_rows(plane), heartbeat, "a check-in within one heartbeat of the config")
    arrived = time.monotonic() - got_config
    assert proxy.proxy_uid == d.proxy_id()
    assert (proxy.hostname, proxy.image_version, proxy.image_digest) == (socket.gethostname(), IMAGE_VERSION, None)
    assert proxy.config_version == plane.config_version and proxy.last_error is None
    # a heartbeat later (less a second of rounding) the proxy has checked in again
    first_uptime = proxy.uptime_s
    wait_until(lambda: proxy_rows(plane)[0].uptime_s >= first_uptime + heartbeat - 1, 3 * heartbeat,
               "the next heartbeat's check-in")

    scheduled = wait_until(lambda: [r for r in run_rows(plane) if r.trigger == "schedule"], 120,
                           "a scheduled run's report")[0]
    assert (scheduled.requested, scheduled.canonical, scheduled.provider) == (
        "test_endpoint_connection", "test_endpoint_connection", "arius")
    statuses = hosts_of(scheduled)
    assert statuses == {e.name: EXPECTED[e.name] for e in persona_fleet.endpoints}, statuses
    assert (scheduled.total, scheduled.auth_failed, scheduled.unreachable, scheduled.timeout, scheduled.skipped) == (
        len(statuses), 1, 1, 1, 1)
    assert scheduled.run_uid == d.runs()[0]["run_id"]  # the history names the run as the server does

    manual = subprocess.run([CLI, "run", "pdv_test_connection", "--host", "FLEET-LOJA001-PDV20[78]", "--json"],
                            env=d.env, capture_output=True, text=True, timeout=120, check=False)
    assert manual.returncode == 1, manual.stderr  # both hosts fail, as they should
    mine = wait_until(lambda: [r for r in run_rows(plane) if r.trigger == "manual"], heartbeat + 5,
                      "the manual run's report")
    assert len(mine) == 1 and mine[0].requested == "pdv_test_connection"
    assert hosts_of(mine[0]) == {"FLEET-LOJA001-PDV207": "auth_failed", "FLEET-LOJA001-PDV208": "unreachable"}
    # a manual run that ends before any host: the server hears why
    broken = tmp_path / "broken-inventory.json"
    broken.write_text(json.dumps(config(tmp_path / "missing.yaml", heartbeat, PARAM_REDE=plane.rede)))
    failed = subprocess.run([CLI, "run", "pdv_test_connection", "-c", str(broken)], env=d.env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert failed.returncode == 3, failed.stderr
    (why,) = wait_until(lambda: [r for r in run_rows(plane) if r.trigger == "manual" and r.error], heartbeat + 5,
                        "the failed manual run's report")
    assert why.error.startswith("inventory error") and why.total == 0, why.error
    assert plane.token not in d.text() and plane.token not in manual.stderr
    print(f"first check-in {arrived:.1f} s after the config arrived (heartbeat {heartbeat} s)")


@contextmanager
def hung_server(port: int) -> Iterator[None]:
    """A server that accepts connections and never answers: the listen backlog takes them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    try:
        yield
    finally:
        sock.close()


def test_reports_wait_out_an_outage_and_arrive_in_order_once_while_the_schedule_goes_on(
    control_plane_factory: ControlPlaneFactory, persona_fleet: Fleet, start_daemon: Any, tmp_path: Path
) -> None:
    heartbeat = 2
    inv = inventory(persona_fleet, tmp_path / "two.yaml",
                    {"ubuntu2204": "FLEET-LOJA001-PDV201", "nothing_listens": "FLEET-LOJA001-PDV208"})
    plane = control_plane_factory(rede="FLEET", config=config(inv, heartbeat))
    d = start_daemon(plane, scale=30)  # a tick every 2 s
    wait_until(lambda: any(r.trigger == "schedule" for r in run_rows(plane)), 60, "a first report")
    port = plane.port
    plane.stop()
    with hung_server(port):  # first the server hangs: every delivery waits for its timeouts
        base = len(d.runs())
        wait_until(lambda: len(d.runs()) >= base + 4 or not d.alive(), 60, "four runs while the server hangs")
        hb = read_heartbeat(d.state)
        assert hb is not None and time.time() - hb["ts"] < 5, "the scheduler loop stalled"
    base = len(d.runs())  # then it is gone: connection refused
    wait_until(lambda: len(d.runs()) >= base + 3 or not d.alive(), 60, "three runs while the server is gone")
    assert d.alive(), d.text()[-3000:]
    assert d.spooled_runs() >= 7
    history = [r for r in read_history(d.state) if r.get("action") == "test_endpoint_connection"]
    assert not [r for r in history if r["result"] == "skipped_overlap"], "a tick waited on the outbox"

    plane.start(port=port)
    wait_until(lambda: d.spooled_runs() == 0, 6 * heartbeat + 30, "the backlog delivered once the server is back")
    # the check-in sent with the backlog still named the outage; the next one no longer does (a
    # config refresh that fell inside the outage stays reported until the next refresh succeeds)
    def delivery_error() -> bool:
        return "wait in the outbox" in (proxy_rows(plane)[0].last_error or "")

    wait_until(lambda: not delivery_error(), 3 * heartbeat + 10, "a check-in without the outage")
    done = len(d.runs())
    wait_until(lambda: len(d.runs()) > done, 30, "one more run after the backlog")
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0
    ran = [r["run_id"] for r in d.runs()]
    left = d.spooled_run_ids()  # spooled before the stop, not delivered yet: the next start sends them
    stored = [r.run_uid for r in run_rows(plane) if r.trigger == "schedule"]
    # a report in flight at the stop may be stored and still spooled (its acknowledgement did not
    # commit): the next start sends it again and the server keeps it once (run_id)
    in_both = [run_id for run_id in left if run_id in stored]
    assert len(in_both) <= 1, in_both
    assert stored + [run_id for run_id in left if run_id not in stored] == ran, \
        "a report was lost, repeated or reordered"
    log = d.text()
    assert len(re.findall(r"WARNING controlplane: .*wait in the outbox", log)) == 1, log[-3000:]
    assert "control plane reachable again" in log


def test_a_token_without_report_write_is_logged_once_and_the_daemon_carries_on(
    control_plane_factory: ControlPlaneFactory, persona_fleet: Fleet, start_daemon: Any, tmp_path: Path
) -> None:
    heartbeat = 1
    inv = inventory(persona_fleet, tmp_path / "one.yaml", {"ubuntu2204": "FLEET-LOJA001-PDV201"})
    plane = control_plane_factory(rede="FLEET", config=config(inv, heartbeat))
    read_only = plane.issue_token(scopes=["config:read"])
    d = start_daemon(plane, token=read_only, scale=30)
    wait_until(lambda: len(d.runs()) >= 5 or not d.alive(), 90, "five scheduled runs")
    assert d.alive(), d.text()[-3000:]
    assert proxy_rows(plane) == [] and run_rows(plane) == []
    log = d.text()
    assert log.count("needs the scope report:write") == 1, log[-3000:]
    assert d.spooled_runs() >= 4  # kept, bounded by PARAM_SPOOL_MAX_MB
    health = subprocess.run([CLI, "health"], env=d.env, capture_output=True, text=True, check=False)
    assert health.returncode == 0, health.stdout
    assert read_only not in log
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0


def refused_posts(plane: ControlPlane) -> int:
    """POSTs to the ingest endpoints the server refused with 401/403 (its own request counter)."""
    text = httpx.get(plane.url + "/metrics", timeout=10).text
    pattern = r'flageemonitor_http_requests_total\{method="POST",route="/api/ingest/bot/\w+",status="40[13]"\} (\S+)'
    return int(sum(float(n) for n in re.findall(pattern, text)))


def test_a_revoked_token_keeps_the_reports_says_so_once_and_backs_off(
    control_plane_factory: ControlPlaneFactory, persona_fleet: Fleet, start_daemon: Any, tmp_path: Path
) -> None:
    heartbeat = 4
    inv = inventory(persona_fleet, tmp_path / "one.yaml", {"ubuntu2204": "FLEET-LOJA001-PDV201"})
    plane = control_plane_factory(rede="FLEET", config=config(inv, heartbeat))
    d = start_daemon(plane, scale=30)  # a tick every 2 s
    wait_until(lambda: any(r.trigger == "schedule" for r in run_rows(plane)) or not d.alive(), 60, "a first report")
    plane.revoke_token(plane.token_id)
    wait_until(lambda: refused_posts(plane) > 0, 3 * heartbeat + 10, "the first refused delivery")
    before, t0 = refused_posts(plane), time.monotonic()
    base = len(d.runs())
    wait_until(lambda: len(d.runs()) >= base + 6 or not d.alive(), 90, "six more runs with the token revoked")
    assert d.alive(), d.text()[-3000:]
    tries, elapsed = refused_posts(plane) - before, time.monotonic() - t0
    # backing off 1, 2, 4 s, then once per heartbeat: a loop retrying at once would make hundreds
    assert tries <= elapsed / 2 + 3, (tries, elapsed)
    assert d.spooled_runs() >= 6
    log = d.text()
    assert log.count("wait in the outbox until the token is fixed") == 1, log[-3000:]
    assert plane.token not in log
    d.proc.send_signal(signal.SIGTERM)
    assert d.proc.wait(timeout=30) == 0

    # a new token on the same state volume: what waited arrives, in order, once
    ran_before = len(d.runs())
    again = start_daemon(plane, token=plane.issue_token(), state=d.state)
    wait_until(lambda: (again.spooled_runs() == 0 and len(again.runs()) > ran_before) or not again.alive(), 60,
               "the waiting reports delivered with the new token")
    again.proc.send_signal(signal.SIGTERM)
    assert again.proc.wait(timeout=30) == 0
    ran = [r["run_id"] for r in again.runs()]
    stored = [r.run_uid for r in run_rows(plane) if r.trigger == "schedule"]
    assert stored + again.spooled_run_ids() == ran, "a report was lost, repeated or reordered"


def test_one_delivery_pass_against_the_server_big_resent_and_refused_bodies(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    rng = random.Random(3)
    noise = string.ascii_letters + string.digits
    hosts = [HostResult(f"TESTNET-LOJA{i // 100:03d}-PDV{i % 100:03d}", "10.0.0.1", Status.FAILED,
                        detail="".join(rng.choices(noise, k=500))) for i in range(MAX_HOSTS)]
    big = RunReport(requested="pdv_test_connection", canonical="test_endpoint_connection", provider="arius",
                    action_version="1.0.0", dry_run=False, hosts=hosts, started_at="2026-03-01T10:00:00+00:00")
    proxy = identity.proxy_id(tmp_path)
    first = bodies.run_body(big, proxy_id=proxy, run_id="run-big", trigger="manual")
    refused = bodies.run_body(big, proxy_id=proxy, run_id="run-refused", trigger="manual")
    refused["summary"]["ok"] = -1  # out of the contract's bounds: 422, never accepted as it is
    small = bodies.run_body({**big.to_dict(), "hosts": []}, proxy_id=proxy, run_id="run-small", trigger="manual")
    for body in (first, refused, first, small):  # the third is a resend of the first
        outbox.put_run(tmp_path, body)
    target = target_from_env({"FLAGEEMONITOR_API_BASE": control_plane.api_base,
                              "FLAGEEMONITOR_TOKEN": control_plane.token})
    assert target is not None
    result = outbox.deliver(tmp_path, target)
    assert (result.delivered, result.refused, result.waiting) == (3, 1, None)
    assert [r.run_uid for r in run_rows(control_plane)] == ["run-big", "run-small"]
    assert len(hosts_of(run_rows(control_plane)[0])) == MAX_HOSTS
    with Spool(spool_path(tmp_path)) as spool:
        assert spool.peek(RUNS_QUEUE) == []
        assert [decode(i.body)["run_id"] for i in spool.peek(RUNS_QUEUE + ".rejected")] == ["run-refused"]
