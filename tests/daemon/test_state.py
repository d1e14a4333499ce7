"""Run history stays bounded; health reports a missing config and a stuck scheduler."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from flageemonitor.proxy.daemon import health
from flageemonitor.proxy.daemon.state import HEARTBEAT_NAME, RunHistory, read_history, write_json_atomic


def test_run_history_is_capped_and_keeps_the_newest(tmp_path: Path) -> None:
    hist = RunHistory(tmp_path, cap=10)
    for i in range(55):
        hist.append({"action": "a", "n": i})
    lines = (tmp_path / "run-history.jsonl").read_text().splitlines()
    assert len(lines) < 20
    assert [r["n"] for r in read_history(tmp_path, 3)] == [52, 53, 54]
    # a restarted daemon continues counting from the file
    hist2 = RunHistory(tmp_path, cap=10)
    for i in range(55, 80):
        hist2.append({"action": "a", "n": i})
    assert len((tmp_path / "run-history.jsonl").read_text().splitlines()) < 20


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAGEEMONITOR_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_PATH", raising=False)
    monkeypatch.delenv("ARIUSMONITOR_CONFIG_PATH", raising=False)
    return tmp_path


def test_health_fails_without_config_then_without_heartbeat_then_passes(state: Path) -> None:
    ok, why = health.check()
    assert not ok and "no config" in why
    (state / "config_bot.json").write_text('{"PARAM_REDE": "REDE1", "CONFIG_VERSION": 4}')
    ok, why = health.check()
    assert not ok and "heartbeat" in why
    write_json_atomic(state / HEARTBEAT_NAME, {"ts": time.time(), "config_version": 4})
    ok, why = health.check()
    assert ok and "version 4" in why


def test_health_reports_a_stuck_scheduler_and_a_stopped_daemon(state: Path) -> None:
    (state / "config_bot.json").write_text('{"PARAM_REDE": "REDE1"}')
    write_json_atomic(state / HEARTBEAT_NAME, {"ts": time.time() - 600})
    ok, why = health.check(max_age_s=120)
    assert not ok and "stuck" in why
    write_json_atomic(state / HEARTBEAT_NAME, {"ts": time.time(), "state": "stopped", "pid": 42})
    ok, why = health.check(max_age_s=120)
    assert not ok and "stopped" in why


def test_health_rejects_a_config_that_is_not_a_bot_config(state: Path) -> None:
    (state / "config_bot.json").write_text(json.dumps({"hello": 1}))
    ok, why = health.check(require_daemon=False)
    assert not ok and "PARAM_REDE" in why
    (state / "config_bot.json").write_text('{"PARAM_REDE": ')
    ok, why = health.check(require_daemon=False)
    assert not ok and "unreadable" in why


def test_health_module_imports_no_heavy_dependency() -> None:
    import subprocess
    import sys

    heavy = "('pydantic', 'httpx', 'typer', 'rich', 'asyncssh', 'croniter')"
    code = f"import sys, flageemonitor.proxy.daemon.health; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_status_without_a_running_daemon_shows_last_runs_and_next_ticks_in_timezone(state: Path) -> None:
    from flageemonitor.proxy.cli.daemon_cmds import collect_status

    (state / "config_bot.json").write_text(json.dumps({
        "PARAM_REDE": "REDE1", "TIMEZONE": "America/Sao_Paulo", "CONFIG_VERSION": 7,
        "PARAM_CRON_ACTIONS": {"pdv_diagnose_env": "*/15 * * * *", "status_caixa": True}}))
    hist = RunHistory(state)
    hist.append({"action": "diagnose_env", "result": "ok", "summary": {"total": 2, "ok": 2}})
    hist.append({"action": "diagnose_env", "result": "skipped_overlap"})
    st = collect_status(None)
    assert st["daemon"]["state"] == "not started"
    assert st["config"] == {"path": str(state / "config_bot.json"), "valid": True, "version": 7, "error": None}
    actions = {a["action"]: a for a in st["actions"]}
    assert actions["diagnose_env"]["last_run"]["summary"] == {"total": 2, "ok": 2}  # a skipped tick is not a run
    assert actions["diagnose_env"]["next"].endswith("-03:00")
    assert actions["collect_checkout_status"]["enabled"] is True
    assert actions["shutdown_endpoint"]["cron"] == "50 23 * * *"


def test_history_readers_skip_a_torn_last_line_and_writers_cut_it_off(tmp_path: Path) -> None:
    path = tmp_path / "run-history.jsonl"
    # what a writer killed mid-line (or cut short by a full disk) leaves: a fragment without its newline
    path.write_text('{"action": "a", "n": 1}\n{"action": "a", "n": 2, "resu')
    assert [r["n"] for r in read_history(tmp_path)] == [1]
    RunHistory(tmp_path).append({"action": "a", "n": 3})
    assert path.read_text() == '{"action": "a", "n": 1}\n{"action": "a", "n": 3}\n'
    assert [r["n"] for r in read_history(tmp_path)] == [1, 3]


@pytest.mark.slow
def test_history_append_on_a_full_disk_leaves_no_half_line(tmp_path: Path) -> None:
    from tests.daemon.conftest import fill, tmpfs

    with tmpfs(tmp_path / "state", "1m") as state:
        hist = RunHistory(state)
        hist.append({"action": "a", "n": 1})
        filler = fill(state)
        big = {"action": "a", "n": 2, "detail": "x" * 20000}  # more than the room left in the file's last page
        with pytest.raises(OSError):
            hist.append(big)
        assert (state / "run-history.jsonl").read_text() == '{"action": "a", "n": 1}\n'
        filler.unlink()
        hist.append({"action": "a", "n": 3})
        assert [r["n"] for r in read_history(state)] == [1, 3]
