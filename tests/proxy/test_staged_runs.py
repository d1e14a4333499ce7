"""Staged runs on real sshd endpoints (devtools.fleet.STAGING_PERSONAS): the run stops where the
rule says, and no host of a later batch is contacted — the evidence is each endpoint's own log of
the commands it was sent, not the report.

Store 010, in name order: PDV201 ok, 202 ok, 203 auth_failed (wrong password), 204 ok, 205 ok,
206 failed (every command but the facts probe exits 1), 207 ok, 208 ok, 209 unreachable (nothing
listens), 210 ok. Store 011: four endpoints that answer the facts probe and then hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import STAGING_PERSONAS, Fleet

from tests.fixtures.sshd import CliResult, FleetRun

pytestmark = pytest.mark.slow

STORE = "FLEET-LOJA010-*"
PERSONA = {p.host: p.key for p in STAGING_PERSONAS}
NAMES = sorted(h for h in PERSONA if h.startswith("FLEET-LOJA010-"))
SILENT = {"FLEET-LOJA010-PDV209"}  # nothing listens: no log to read, unreachable whenever contacted


def host(n: int) -> str:
    return f"FLEET-LOJA010-PDV{200 + n}"


def contacted(fleet: Fleet) -> set[str]:
    """The store-010 endpoints that received any command (the facts probe included)."""
    return {name for name in NAMES if fleet.commands(PERSONA[name])}


def statuses(result: CliResult) -> dict[str, str]:
    return {name: h["status"] for name, h in result.hosts().items()}


def run(fleet_run: FleetRun, *args: str) -> CliResult:
    return fleet_run("run", *args, "--json", "--timeout", "20")


def test_a_share_equal_to_the_limit_continues_and_a_higher_one_stops_before_the_next_batch(
        staging_run: FleetRun) -> None:
    result = run(staging_run, "test_endpoint_connection", "--host", STORE, "--batch", "2",
                 "--max-fail-percent", "25")
    assert result.returncode == 1, result.stderr
    staging = result.report()["staging"]
    # batch 2 ends at 1 of 4 attempted failed = 25%: equal, goes on; batch 3 ends at 2 of 6 = 33.3%: stops
    assert [b["failures"] for b in staging["batches"][:3]] == [0, 1, 2]
    assert [b["attempted"] for b in staging["batches"][:3]] == [2, 4, 6]
    assert staging["stopped_after_batch"] == 3 and [b["ran"] for b in staging["batches"]] == [True] * 3 + [False] * 2
    assert "2 of 6 hosts attempted failed (33.3%), more than --max-fail-percent 25" in staging["stop_reason"]
    got = statuses(result)
    assert [got[host(n)] for n in range(1, 7)] == ["ok", "ok", "auth_failed", "ok", "ok", "failed"]
    for n in range(7, 11):
        assert got[host(n)] == "skipped"
        assert result.hosts()[host(n)]["detail"].startswith("not contacted: the run stopped after batch 3 of 5")
    assert contacted(staging_run.fleet) == {host(n) for n in (1, 2, 4, 5, 6)}  # 203 refused the login
    summary = result.report()["summary"]
    assert summary["skipped"] == 4 and summary["stopped_after_batch"] == 3 and summary["failures"] == 2


def test_zero_percent_stops_after_the_batch_of_the_first_failure(staging_run: FleetRun) -> None:
    result = run(staging_run, "test_endpoint_connection", "--host", STORE, "--batch", "1", "--max-fail-percent", "0")
    assert result.returncode == 1
    assert result.report()["staging"]["stopped_after_batch"] == 3  # 203 is the first failure
    assert [statuses(result)[h] for h in NAMES] == ["ok", "ok", "auth_failed"] + ["skipped"] * 7
    assert contacted(staging_run.fleet) == {host(1), host(2)}


def test_a_hundred_percent_never_stops(staging_run: FleetRun) -> None:
    result = run(staging_run, "test_endpoint_connection", "--host", STORE, "--batch", "1",
                 "--max-fail-percent", "100")
    assert result.returncode == 1  # failures still fail the run
    staging = result.report()["staging"]
    assert staging["stopped_after_batch"] is None and all(b["ran"] for b in staging["batches"])
    assert len(staging["batches"]) == 10 and staging["batches"][-1]["failures"] == 3
    assert "skipped" not in statuses(result).values()
    assert contacted(staging_run.fleet) == set(NAMES) - SILENT - {host(3)}


def test_a_batch_larger_than_the_fleet_is_one_batch_and_never_stops(staging_run: FleetRun) -> None:
    result = run(staging_run, "test_endpoint_connection", "--host", STORE, "--batch", "50", "--max-fail-percent", "0")
    staging = result.report()["staging"]
    assert [len(b["hosts"]) for b in staging["batches"]] == [10] and staging["stopped_after_batch"] is None
    assert result.returncode == 1 and "skipped" not in statuses(result).values()
    assert contacted(staging_run.fleet) == set(NAMES) - SILENT - {host(3)}


def test_one_host_is_one_batch(staging_run: FleetRun) -> None:
    failing = run(staging_run, "test_endpoint_connection", "--host", host(6), "--batch", "1", "--max-fail-percent", "0")
    assert failing.returncode == 1 and statuses(failing) == {host(6): "failed"}
    assert failing.report()["staging"]["stopped_after_batch"] is None  # nothing after it to protect
    passing = run(staging_run, "uninstall_endpoint_agent", "--host", host(7))  # the default canary: that host
    assert passing.returncode == 0 and statuses(passing) == {host(7): "ok"}
    assert passing.report()["staging"]["batches"] == [{"hosts": [host(7)], "ran": True, "attempted": 1,
                                                       "failures": 0}]


def test_an_action_that_changes_endpoints_gets_a_canary_that_stops_at_any_failure(staging_run: FleetRun) -> None:
    fleet = staging_run.fleet
    selection = "FLEET-LOJA010-PDV20[3-8]"  # 203 (wrong password) is the canary
    stopped = run(staging_run, "uninstall_endpoint_agent", "--host", selection)
    assert stopped.returncode == 1
    staging = stopped.report()["staging"]
    assert staging["source"] == "default" and staging["batch"] == "5%,100%" and staging["max_fail_percent"] == 0
    assert [b["hosts"] for b in staging["batches"]] == [[host(3)], [host(n) for n in range(4, 9)]]
    assert staging["stopped_after_batch"] == 1
    assert [statuses(stopped)[host(n)] for n in range(3, 9)] == ["auth_failed"] + ["skipped"] * 5
    assert contacted(fleet) == set()  # the canary refused the login; nobody else was contacted

    fleet.clear_commands()
    passed = run(staging_run, "uninstall_endpoint_agent", "--host", "FLEET-LOJA010-PDV20[4-8]")
    staging = passed.report()["staging"]
    assert [len(b["hosts"]) for b in staging["batches"]] == [1, 4] and staging["stopped_after_batch"] is None
    assert [statuses(passed)[host(n)] for n in range(4, 9)] == ["ok", "ok", "failed", "ok", "ok"]
    assert passed.returncode == 1 and contacted(fleet) == {host(n) for n in range(4, 9)}

    fleet.clear_commands()
    one_wave = run(staging_run, "uninstall_endpoint_agent", "--host", selection, "--batch", "all")
    assert "staging" not in one_wave.report()  # the operator opted out: today's single wave
    assert [statuses(one_wave)[host(n)] for n in range(3, 9)] == ["auth_failed", "ok", "ok", "failed", "ok", "ok"]
    assert contacted(fleet) == {host(n) for n in range(4, 9)}


def test_read_only_actions_keep_one_wave(staging_run: FleetRun) -> None:
    result = run(staging_run, "test_endpoint_connection", "--host", STORE)
    assert "staging" not in result.report() and "skipped" not in statuses(result).values()


def test_plan_shows_the_batches_and_the_rule_and_probes_every_host(staging_run: FleetRun) -> None:
    selection = "FLEET-LOJA010-PDV20[3-8]"
    plan = staging_run("plan", "uninstall_endpoint_agent", "--host", selection, "--timeout", "20")
    assert plan.returncode == 1  # 203 and 206 fail their probe even in a plan
    out = plan.stdout
    assert "batches (5%,100%, the default for actions that change endpoints):" in out
    assert f"  1: 1 host: {host(3)}" in out
    assert f"  2: 5 hosts: {', '.join(host(n) for n in range(4, 9))}" in out
    assert "stops before the next batch when more than 0% of the hosts attempted so far failed" in " ".join(
        out.split())
    assert "a plan probes every host and never stops" in " ".join(out.split())
    assert "stopped:" not in out
    assert contacted(staging_run.fleet) == {host(n) for n in range(4, 9)}  # every host probed: no stop
    as_json = staging_run("plan", "uninstall_endpoint_agent", "--host", selection, "--json", "--timeout", "20")
    staging = as_json.report()["staging"]
    assert staging["stopped_after_batch"] is None and all(b["ran"] for b in staging["batches"])
    assert {h["status"] for h in as_json.report()["hosts"]} == {"auth_failed", "failed", "planned"}


# ---- a batch in flight
def sleepers(fleet: Fleet, persona: str) -> list[int]:
    """PIDs of the hanging command (busybox sleep) running inside one persona's tree."""
    root = str(fleet.chroot(persona).resolve())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{entry}/root").startswith(root) and b"sleep" in Path(
                    f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
    return found


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g}s: {what}")


def test_a_batch_runs_its_hosts_at_once_and_the_next_batch_waits_for_it(staging_run: FleetRun) -> None:
    """Four endpoints that hang after the facts probe, in batches of two: both hosts of batch 1
    hang at the same time (a serial fan-out would hold one for the 60 s command timeout), while
    batch 2 has received nothing."""
    fleet = staging_run.fleet
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(staging_run.state_dir)}
    argv = [sys.executable, "-m", "flageemonitor.proxy.cli.app", "run", "test_endpoint_connection", "--host",
            "FLEET-LOJA011-*", "--batch", "2", "--max-fail-percent", "100", "--timeout", "60", "--json",
            "--config", str(staging_run.config_path), "--inventory", str(fleet.inventory_path)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: sleepers(fleet, "staged_hang1") and sleepers(fleet, "staged_hang2"), 45,
                   "both hosts of the first batch hanging at once")
        assert fleet.commands("staged_hang3") == [] and fleet.commands("staged_hang4") == []
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for persona in ("staged_hang1", "staged_hang2", "staged_hang3", "staged_hang4"):
            for pid in sleepers(fleet, persona):  # the hanging commands this run left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


# ---- the daemon
def test_a_scheduled_run_is_staged_and_its_stop_is_logged_and_recorded(staging_fleet: Fleet, tmp_path: Path) -> None:
    """`pdv_uninstall` scheduled every minute with no staging keys gets the canary default; the
    canary (203) refuses the login, the run stops, and the daemon's log line and run history say so."""
    staging_fleet.clear_commands()
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "config_bot.json"
    off = {name: False for name in ("cupons", "cupons_detalhes", "cupons_lv", "pdv_install",
                                    "pdv_atualiza_impressora", "pdv_shutdown")}
    config.write_text(json.dumps({
        "PARAM_REDE": "FLEET", "TIMEZONE": "UTC", "PARAM_INVENTORY_FILE": str(staging_fleet.inventory_path),
        "ssh": {"timeout": 5, "command_timeout": 20, "host_key_policy": "pin"},
        "PARAM_CRON_ACTIONS": {**off, "pdv_uninstall": {"cron": "* * * * *",
                                                        "args": ["--host", "FLEET-LOJA010-PDV20[3-8]"]}},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGEEMONITOR_", "ARIUSMONITOR_"))}
    env.update(FLAGEEMONITOR_STATE_DIR=str(state), FLAGEEMONITOR_CLOCK_START="2026-03-11T12:00:50+00:00",
               FLAGEEMONITOR_CLOCK_SCALE="10", FLAGEEMONITOR_HEARTBEAT_INTERVAL="0.2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "flageemonitor.proxy.cli.app", "daemon", "--config", str(config)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    history = state / "run-history.jsonl"

    def records() -> list[dict[str, Any]]:
        lines = history.read_text().splitlines() if history.exists() else []
        return [r for r in map(json.loads, lines) if r["action"] == "uninstall_endpoint_agent"]

    try:
        wait_until(lambda: any(r["result"] != "skipped_overlap" for r in records()), 60, "a finished scheduled run")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    log = out.decode()
    assert proc.returncode == 0, log
    first = next(r for r in records() if r["result"] != "skipped_overlap")
    tick = datetime.fromisoformat(first["tick"])  # a cron tick after the start (which one depends on the load)
    assert tick.second == 0 and tick > datetime.fromisoformat("2026-03-11T12:00:50+00:00")
    assert first["result"] == "stopped", first
    assert first["detail"].startswith("the run stopped after batch 1 of 2: 1 of 1 hosts attempted failed (100%)")
    assert first["summary"]["stopped_after_batch"] == 1 and first["summary"]["skipped"] == 5
    line = next(x for x in log.splitlines() if "uninstall_endpoint_agent: run stopped in" in x)
    assert "stopped_after_batch=1" in line and "(the run stopped after batch 1 of 2" in line
    assert contacted(staging_fleet) == set()  # every later tick stopped at the same canary too
