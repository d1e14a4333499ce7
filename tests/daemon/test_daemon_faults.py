"""The daemon against the real control plane (behind the fault proxy) and real sshd endpoints.

One daemon process lives through every fault in turn; after each, the config on disk must be
the last valid one byte for byte and the schedule must still be running. The daemon's clock
runs 30x faster (`FLAGEEMONITOR_CLOCK_SCALE`, a test hook): `* * * * *` fires every 2 s, and
cron is still evaluated in the config's TIMEZONE as in production.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import Fleet

from flageemonitor.core.config_model import parse_config_text
from flageemonitor.proxy.daemon.state import read_heartbeat
from tests.daemon.conftest import CLI, FullDisk, cli_env, tmpfs, valid_config
from tests.daemon.faultproxy import FaultProxy
from tests.daemon.faults import FAULTS, restore
from tests.fixtures.server import ControlPlane
from tests.fixtures.sshd import inventory

pytestmark = pytest.mark.slow

SCALE = 30  # one scheduled minute every 2 real seconds


@dataclass
class DaemonProc:
    proc: subprocess.Popen[bytes]
    log: Path
    state: Path
    deaths: int = 0
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.text()))

    def grew(self, pattern: str, base: int, by: int) -> Callable[[], bool]:
        return lambda: self.count(pattern) >= base + by

    def changed_from(self, data: bytes) -> Callable[[], bool]:
        return lambda: self.config() != data

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            self.deaths += 1
            return False
        return True

    def config(self) -> bytes:
        return (self.state / "config_bot.json").read_bytes()

    def wait(self, what: str, pred: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            assert self.alive(), f"daemon died (exit {self.proc.returncode}) waiting for {what}:\n{self.text()[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; daemon log tail:\n{self.text()[-3000:]}")


RUNS = r"test_endpoint_connection: run (?:ok|failed|error)"


@pytest.fixture
def daemon_extra_env() -> dict[str, str]:
    return {}


@pytest.fixture
def daemon(server: ControlPlane, proxy: FaultProxy, persona_fleet: Fleet, tmp_path: Path,
           daemon_extra_env: dict[str, str]) -> Iterator[DaemonProc]:
    with tmpfs(tmp_path / "state", "4m", inodes=512) as state:
        env = cli_env(state, proxy.url + "/api/ingest/bot/config", server.token,
                      FLAGEEMONITOR_CLOCK_SCALE=str(SCALE), FLAGEEMONITOR_HEARTBEAT_INTERVAL="0.5",
                      FLAGEEMONITOR_CONFIG_RETRY="0.5", FLAGEEMONITOR_STOP_GRACE="3", TZ="UTC",
                      **daemon_extra_env)
        log = tmp_path / "daemon.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([CLI, "daemon"], env=env, stdout=out, stderr=subprocess.STDOUT)
        d = DaemonProc(proc, log, state)
        try:
            yield d
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            restore(server, proxy)


def _cfg(tmp: Path, fleet: Fleet, n: int, *, slow: bool = False, **extra: Any) -> dict[str, Any]:
    inv = inventory(fleet, tmp / ("slow.yaml" if slow else "fast.yaml"),
                    {"hang": "TESTNET-LOJA001-PDV206"} if slow else {"ubuntu2204": "TESTNET-LOJA001-PDV201"})
    crons: dict[str, Any] = {"config_refresh": "* * * * *", "pdv_test_connection": "* * * * *",
                             # defaults not implemented in this version only log a skip line
                             "pdv_shutdown": False, "cupons": False, "cupons_detalhes": False, "cupons_lv": False,
                             "pdv_install": False}
    crons.update(extra.pop("crons", {}))
    return valid_config(n, PARAM_INVENTORY_FILE=str(inv), PARAM_CRON_ACTIONS=crons,
                        ssh={"timeout": 5, "command_timeout": 6 if slow else 20, "host_key_policy": "insecure"},
                        **extra)


def test_daemon_survives_every_config_fault_and_keeps_its_schedule(
    server: ControlPlane, proxy: FaultProxy, persona_fleet: Fleet, daemon: DaemonProc, tmp_path: Path
) -> None:
    n = iter(range(100, 10_000))
    server.set_config(_cfg(tmp_path, persona_fleet, next(n)))
    injected = lost = 0

    # --- start with the server down and no config at all: retries with backoff, says so
    proxy.pause()
    daemon.wait("the no-config retry line", lambda: daemon.count(r"no valid config yet .* retrying in") >= 2)
    injected += 1
    proxy.resume()
    daemon.wait("the first config", lambda: (daemon.state / "config_bot.json").exists())
    daemon.wait("scheduled runs", lambda: daemon.count(RUNS) >= 2)

    # --- every server-side fault, then a full disk
    faults: dict[str, Callable[[], None]] = {
        name: functools.partial(apply, server, proxy) for name, (apply, _code, _why) in FAULTS.items()
    }
    full = FullDisk(daemon.state)
    faults["disk_full"] = full.apply
    reasons = {name: why for name, (_a, _c, why) in FAULTS.items()} | {"disk_full": "disk full"}
    for name, apply in faults.items():
        before = daemon.config()
        parse_config_text(before)
        fails0 = daemon.count(r"update-config: .*" + re.escape(reasons[name]))
        runs0 = daemon.count(RUNS)
        apply()
        # a version a working refresh would install, stored once the fault is in place: stored
        # before it, a refresh (every 2 s) could fetch it while a slow server stop is under way
        server.set_config(_cfg(tmp_path, persona_fleet, next(n)))
        injected += 1
        daemon.wait(f"two failed refreshes under {name}",
                    daemon.grew(r"update-config: .*" + re.escape(reasons[name]), fails0, 2))
        daemon.wait(f"runs to continue under {name}", daemon.grew(RUNS, runs0, 2))
        lost += daemon.config() != before
        assert daemon.config() == before, name
        full.undo()
        restore(server, proxy)
        daemon.wait(f"recovery after {name}", daemon.changed_from(before))
        parse_config_text(daemon.config())

    # --- a config change that enables a new scheduled action takes effect without restart
    assert daemon.count(r"test_endpoint_privilege: run") == 0
    server.set_config(_cfg(tmp_path, persona_fleet, next(n), crons={"pdv_test_sudo": "* * * * *"}))
    injected += 1
    daemon.wait("the newly scheduled action", lambda: daemon.count(r"test_endpoint_privilege: run (?:ok|failed)") >= 2)

    # --- a slow action (a hanging endpoint, 6 s command timeout) outliving its 2 s interval
    server.set_config(_cfg(tmp_path, persona_fleet, next(n), slow=True))
    injected += 1
    skipped = r"test_endpoint_connection: tick \S+ skipped: the previous run is still going"
    daemon.wait("overlapping ticks skipped", lambda: daemon.count(skipped) >= 2, timeout=45)
    history = [json.loads(x) for x in (daemon.state / "run-history.jsonl").read_text().splitlines()]
    assert any(r["action"] == "test_endpoint_connection" and r["result"] == "skipped_overlap" for r in history)
    # never two runs of the same action at once: starts and ends alternate in the log
    events = re.findall(r"test_endpoint_connection: run (started|ok|failed|error|cancelled)", daemon.text())
    depth = 0
    for ev in events:
        depth += 1 if ev == "started" else -1
        assert depth in (0, 1), events
    # the refresh keeps working while the slow action runs
    v = server.set_config(_cfg(tmp_path, persona_fleet, next(n), slow=True))
    daemon.wait("refresh during the slow run", lambda: json.loads(daemon.config())["CONFIG_VERSION"] == v)

    # --- SIGHUP reloads the file on disk
    reloads = daemon.count(r"schedule \(reloaded config")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait("SIGHUP reload", lambda: daemon.count(r"schedule \(reloaded config") > reloads)

    # --- status and health while running
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(daemon.state)}
    st = json.loads(subprocess.run([CLI, "status", "--json"], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert st["daemon"]["state"] == "running" and st["config"]["version"] == v
    actions = {a["action"]: a for a in st["actions"]}
    assert actions["test_endpoint_connection"]["next"].endswith("-03:00")  # TIMEZONE America/Sao_Paulo
    assert actions["test_endpoint_connection"]["last_run"]["result"] in ("ok", "failed")
    assert "test_endpoint_privilege" not in actions  # the latest config no longer schedules it
    assert subprocess.run([CLI, "health"], env=env, capture_output=True, check=False).returncode == 0

    # --- SIGTERM during a slow run: stop scheduling, grace (3 s), cancel, exit 0
    daemon.wait("a slow run in progress", lambda: _running(daemon.state, "test_endpoint_connection"))
    t0 = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    rc = daemon.proc.wait(timeout=20)
    assert rc == 0, daemon.text()[-2000:]
    assert time.monotonic() - t0 < 10
    assert "daemon stopped" in daemon.text()
    print(f"\ndaemon faults injected: {injected}; configs lost: {lost}; daemon deaths: {daemon.deaths}")
    assert "crashed" not in daemon.text()  # a full disk fails a report's spooling, never the run's task
    assert lost == 0 and daemon.deaths == 0
    # a stopped daemon is reported unhealthy (stale or stopped heartbeat is the HEALTHCHECK's job)
    st = json.loads(subprocess.run([CLI, "status", "--json"], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert st["daemon"]["state"] == "stopped"
    assert subprocess.run([CLI, "health"], env=env, capture_output=True, check=False).returncode == 1


def test_daemon_stops_promptly_while_its_first_refresh_hangs(
    server: ControlPlane, proxy: FaultProxy, daemon: DaemonProc
) -> None:
    proxy.set("hang")
    daemon.wait("the refresh request to reach the hanging server", lambda: proxy.requests >= 1)
    t0 = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 5, daemon.text()
    assert not (daemon.state / "config_bot.json").exists()


def _running(state: Path, action: str) -> bool:
    try:
        hb = json.loads((state / "daemon.heartbeat.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(hb.get("jobs", {}).get(action, {}).get("running"))


@pytest.mark.parametrize("daemon_extra_env", [{"FLAGEEMONITOR_MAX_CONCURRENT_RUNS": "1"}])
def test_global_limit_bounds_simultaneous_runs_of_different_actions(
    server: ControlPlane, persona_fleet: Fleet, daemon: DaemonProc, tmp_path: Path
) -> None:
    # three actions every 2 s against a hanging endpoint (each run ~6 s), at most one at a time
    server.set_config(_cfg(tmp_path, persona_fleet, 50_000, slow=True,
                           crons={"pdv_test_sudo": "* * * * *", "pdv_diagnose_env": "* * * * *"}))
    ends = r"(?:test_endpoint_connection|test_endpoint_privilege|diagnose_env): run (?:ok|failed|error)"
    daemon.wait("three finished runs", lambda: daemon.count(ends) >= 3, timeout=60)
    events = re.findall(r"(test_endpoint_connection|test_endpoint_privilege|diagnose_env): run "
                        r"(started|ok|failed|error|cancelled)", daemon.text())
    depth = 0
    for _action, ev in events:
        depth += 1 if ev == "started" else -1
        assert depth in (0, 1), events
    assert len({a for a, _ in events}) >= 2, events


@pytest.mark.parametrize(("mode", "reason"), [("nested", "nested too deeply"), ("huge_int", "too many digits")])
def test_daemon_starts_on_its_valid_local_config_while_the_server_sends_a_malformed_body(
    mode: str, reason: str, server: ControlPlane, proxy: FaultProxy, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    local = valid_config(7, CONFIG_VERSION=7, PARAM_CRON_ACTIONS={
        "config_refresh": "* * * * *", "pdv_shutdown": False, "cupons": False, "cupons_detalhes": False,
        "cupons_lv": False, "pdv_install": False, "pdv_atualiza_impressora": False})
    (state / "config_bot.json").write_text(json.dumps(local))
    before = (state / "config_bot.json").read_bytes()
    proxy.set(mode)
    env = cli_env(state, proxy.url + "/api/ingest/bot/config", server.token,
                  FLAGEEMONITOR_CLOCK_SCALE=str(SCALE), FLAGEEMONITOR_HEARTBEAT_INTERVAL="0.5", TZ="UTC")
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, "daemon"], env=env, stdout=out, stderr=subprocess.STDOUT)
    d = DaemonProc(proc, log, state)
    try:
        # the start-up refresh and at least two scheduled ones are refused, the daemon runs on
        d.wait("three refused refreshes", lambda: d.count(r"update-config: server sent an invalid config: .*"
                                                           + re.escape(reason)) >= 3)
        d.wait("the running state", lambda: (read_heartbeat(state) or {}).get("state") == "running")
        assert d.config() == before
        assert "Traceback" not in d.text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert d.deaths == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
