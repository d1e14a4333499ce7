"""The proxy CLI as an operator meets it: errors that say what to fix, progress, nothing created
by a plan, help and flags consistent with the server's CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flageemonitor import __version__
from flageemonitor.proxy.cli.app import app

CLI = [sys.executable, "-m", "flageemonitor.proxy.cli.app"]


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAGEEMONITOR_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_PATH", raising=False)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"PARAM_REDE": "R1", "PARAM_INVENTORY": "file"}))
    return path


def inventory(path: Path, *hosts: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"hosts": list(hosts)}))
    return path


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def silent_host() -> Iterator[int]:
    """Accepts TCP and never sends an SSH banner (a hung sshd)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_plan_creates_no_state_directory(cfg: Path, tmp_path: Path, silent_host: int) -> None:
    inv = inventory(tmp_path / "inv.yaml", {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1", "port": silent_host})
    for action in ("diagnose_env", "test_endpoint_connection"):
        invoke("plan", action, "-c", str(cfg), "--inventory", str(inv), "--connect-timeout", "1")
        assert not (tmp_path / "state").exists(), action


def test_a_waiting_run_prints_progress_and_honours_connect_timeout(cfg: Path, tmp_path: Path,
                                                                  silent_host: int) -> None:
    inv = inventory(tmp_path / "inv.yaml", {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1", "port": silent_host})
    t0 = time.monotonic()
    code, out, err = invoke("run", "test_endpoint_connection", "-c", str(cfg), "--inventory", str(inv),
                            "--connect-timeout", "3", env={"FLAGEEMONITOR_PROGRESS_EVERY": "0.5"})
    elapsed = time.monotonic() - t0
    assert code == 1 and "unreachable=1" in out
    assert "flageemonitor: 0/1 hosts done, 1 still running after" in err
    assert 2.5 < elapsed < 3 + 15  # the silent host cost one 3 s connect timeout, not ssh.timeout's 30


def test_no_hosts_selected_names_the_filter_that_matched_nothing(cfg: Path, tmp_path: Path) -> None:
    inv = inventory(tmp_path / "inv.yaml", {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1"})
    code, out, _ = invoke("run", "test_endpoint_connection", "-c", str(cfg), "--inventory", str(inv),
                          "--loja", "7", "--pdv", "203")
    assert code == 0
    assert "no hosts selected: nothing in the inventory matches --rede R1 --loja 7 --pdv 203" in out


def test_an_inventory_error_is_exit_3_on_every_action_and_lists_the_accepted_keys(cfg: Path, tmp_path: Path) -> None:
    inv = inventory(tmp_path / "inv.yaml", {"name": "R1-LOJA001-PDV201", "ip": "127.0.0.1", "pasword": "x"})
    for action in ("test_endpoint_connection", "diagnose_env", "pdv_test_sudo"):
        code, out, err = invoke("run", action, "-c", str(cfg), "--inventory", str(inv))
        assert code == 3, (action, out, err)
        accepted = "accepted keys: agent_port, ip, key_file, name, password, port, provider, tags, user"
        assert accepted in out + err, action


def test_errors_are_json_under_json(cfg: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    r = subprocess.run([*CLI, "run", "test_endpoint_connection", "-c", str(tmp_path / "absent.json"), "--json"],
                       env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 3
    assert json.loads(r.stdout)["exit_code"] == 3 and "config missing" in json.loads(r.stdout)["error"]
    r = subprocess.run([*CLI, "run", "--json"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and "ACTION" in json.loads(r.stdout)["error"]


def test_health_and_status_follow_the_config_the_daemon_runs_on(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    state.mkdir()
    own = tmp_path / "elsewhere.json"
    own.write_text(json.dumps({"PARAM_REDE": "R1", "CONFIG_VERSION": 42}))
    (state / "daemon.heartbeat.json").write_text(json.dumps(
        {"pid": os.getpid(), "ts": time.time(), "state": "running", "config_path": str(own), "jobs": {}}))
    monkeypatch.setenv("FLAGEEMONITOR_STATE_DIR", str(state))
    monkeypatch.delenv("FLAGEEMONITOR_CONFIG_PATH", raising=False)
    code, out, _ = invoke("health", "--config-only")
    assert code == 0 and str(own) in out
    code, out, _ = invoke("status", "--json")
    assert json.loads(out)["config"] == {"path": str(own), "valid": True, "version": 42, "error": None}


def test_help_version_and_plain_metavars() -> None:
    code, out, _ = invoke("run", "-h")
    assert code == 0 and "Usage: flageemonitor run [OPTIONS] ACTION" in out
    assert "{" not in out.split("\n", 3)[1] and "<str>" not in out
    for flag in ("--network", "--rede", "-c", "--connect-timeout", "--inventory"):
        assert flag in out
    assert invoke("--version")[1].strip() == __version__
    code, out, _ = invoke("daemon", "-h")
    assert "--inventory" in out


def test_actions_never_cuts_the_names_to_type(monkeypatch: pytest.MonkeyPatch) -> None:
    from flageemonitor.core.catalog import load_catalog

    monkeypatch.setenv("COLUMNS", "70")
    _, out, _ = invoke("actions")
    for name in load_catalog().actions:
        assert name in out, name
