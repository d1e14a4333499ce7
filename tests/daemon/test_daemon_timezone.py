"""The running daemon fires `50 23 * * *` (pdv_shutdown's default) at 23:50 in the config's
TIMEZONE while the container runs in UTC: the original fired at 23:50 UTC = 20:50 in São Paulo.

The daemon's clock is started just before the instant under test and runs 30x faster
(`FLAGEEMONITOR_CLOCK_START` / `_CLOCK_SCALE`, test hooks); the cron evaluation is the
production one, and the shutdown action evaluates its window at that clock too. Local-config mode: no server involved.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from devtools.fleet import free_port

from tests.daemon.conftest import CLI, cli_env

pytestmark = pytest.mark.slow  # two daemon processes


def _ticks(tmp_path: Path, clock_start: str, virtual_seconds: float, **config: object) -> list[dict[str, object]]:
    """Run the daemon from `clock_start` until its clock passed `virtual_seconds` (config: the
    network REDE1 in São Paulo, plus `config`); the run history."""
    state = tmp_path / clock_start.replace(":", "")
    state.mkdir()
    config_path = state / "config_bot.json"
    config_path.write_text(json.dumps({"PARAM_REDE": "REDE1", "TIMEZONE": "America/Sao_Paulo", **config}))
    env = cli_env(state, "unused", "unused", FLAGEEMONITOR_CLOCK_START=clock_start, FLAGEEMONITOR_CLOCK_SCALE="30",
                  FLAGEEMONITOR_HEARTBEAT_INTERVAL="0.2", TZ="UTC")
    proc = subprocess.Popen([CLI, "daemon", "--config", str(config_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    until = datetime.fromisoformat(clock_start) + timedelta(seconds=virtual_seconds)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                now = json.loads((state / "daemon.heartbeat.json").read_text()).get("clock_now")
            except (OSError, ValueError):
                now = None
            if now and datetime.fromisoformat(now) >= until:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the daemon's clock never reached the instant under test")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
    hist = state / "run-history.jsonl"
    return [json.loads(x) for x in hist.read_text().splitlines()] if hist.exists() else []


def _down_endpoint(tmp_path: Path) -> dict[str, object]:
    """One endpoint where nothing listens, and a shutdown window of 23:00-00:59: the shutdown run
    contacts it only if the window is evaluated at the daemon's clock."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(json.dumps({"hosts": [{"name": "REDE1-LOJA001-PDV201", "ip": "127.0.0.1",
                                                "port": free_port("127.0.0.1"), "password": "x"}]}))
    return {"PARAM_INVENTORY_FILE": str(inventory), "PARAM_COMPATIBILITY_MODE": "off",
            "shutdown_window": {"start": 23, "end": 0}, "ssh": {"timeout": 5}}


def test_shutdown_schedule_fires_at_2350_local_time_not_2350_utc(tmp_path: Path) -> None:
    # 23:49:30 in São Paulo (02:49:30 UTC): the shutdown tick comes 30 s later
    ticks = _ticks(tmp_path, "2026-03-11T02:49:30+00:00", 45, **_down_endpoint(tmp_path))
    local = [r for r in ticks if r["action"] == "shutdown_endpoint"]
    assert [r["tick"] for r in local] == ["2026-03-10T23:50:00-03:00"]
    # the window said "now" at the daemon's 23:50 São Paulo, so the endpoint was contacted (and is down)
    summary = local[0]["summary"]
    assert local[0]["result"] == "failed" and isinstance(summary, dict) and summary["unreachable"] == 1, local
    # 23:49:30 UTC (20:49:30 in São Paulo): nothing fires at 23:50 UTC
    utc = [r for r in _ticks(tmp_path, "2026-03-10T23:49:30+00:00", 45) if r["action"] == "shutdown_endpoint"]
    assert utc == []
