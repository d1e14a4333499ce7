"""The daemon's default schedule runs `install_endpoint_agent --agent-status 2` every 30 minutes:
now that the action exists, its tick runs it (here it ends in the run's own error, the missing
inventory, instead of `unavailable`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.test_daemon_timezone import _ticks

pytestmark = pytest.mark.slow  # a daemon process


def test_scheduled_agent_install_runs_instead_of_being_unavailable(tmp_path: Path) -> None:
    runs = [r for r in _ticks(tmp_path, "2026-03-11T02:29:40+00:00", 30) if r["action"] == "install_endpoint_agent"]
    assert [r["tick"] for r in runs] == ["2026-03-10T23:30:00-03:00"]
    assert runs[0]["args"] == ["--agent-status", "2"]
    assert runs[0]["result"] == "error" and "inventory" in str(runs[0]["detail"])
