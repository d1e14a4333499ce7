"""The admin CLI as an operator meets it: help, version, JSON errors, nothing created by reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case starts the CLI as a process, as an operator does


def server_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGEEMONITOR_")}
    return subprocess.run([sys.executable, "-m", "flageemonitor.server.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_read_only_commands_create_no_database_and_say_how_to_make_one(tmp_path: Path) -> None:
    for args in (("client", "list"), ("network", "list"), ("audit", "list"), ("db", "current"),
                 ("config", "history", "--network", "X")):
        r = server_cli(tmp_path, *args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("error: no database at ") and "db upgrade" in r.stderr
        assert list(tmp_path.iterdir()) == [], args
    r = server_cli(tmp_path, "--database-url", "postgresql+nosuchdriver://u@h/db", "client", "list")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "sqlite:////abs/path.db" in r.stderr  # what a URL looks like


def test_errors_are_json_under_json_on_usage_and_operation_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    assert server_cli(tmp_path, "--database-url", db, "client", "add", "acme", "--json").returncode == 0
    r = server_cli(tmp_path, "--database-url", db, "client", "add", "acme", "--json")
    assert r.returncode == 1 and json.loads(r.stdout) == {"error": "client 'acme' already exists", "exit_code": 1}
    r = server_cli(tmp_path, "--database-url", db, "token", "issue", "--json")  # --client missing
    assert r.returncode == 2 and "--client" in json.loads(r.stdout)["error"]
    r = server_cli(tmp_path, "--database-url", db, "client", "add", "acme")
    assert r.returncode == 1 and r.stderr == "error: client 'acme' already exists\n"


def test_help_version_and_plain_metavars(tmp_path: Path) -> None:
    r = server_cli(tmp_path, "config", "set", "-h")
    assert r.returncode == 0 and "Usage: flageemonitor-server config set [OPTIONS] FILE" in r.stdout
    assert "<str>" not in r.stdout and "{" not in r.stdout and "--rede" in r.stdout
    from flageemonitor import __version__

    assert server_cli(tmp_path, "--version").stdout.strip() == __version__


@pytest.mark.parametrize("args", [("--expires-in-days", "-1"), ("--expires-in-days", "0"),
                                  ("--expires-at", "2001-01-01T00:00:00+00:00")])
def test_token_issue_refuses_an_expiry_in_the_past(tmp_path: Path, args: tuple[str, str]) -> None:
    db = str(tmp_path / "x.db")
    server_cli(tmp_path, "--database-url", db, "client", "add", "acme")
    r = server_cli(tmp_path, "--database-url", db, "token", "issue", "--client", "acme", *args)
    assert r.returncode == 1 and "fmt_" not in r.stdout and args[0] in r.stderr
    listed = server_cli(tmp_path, "--database-url", db, "token", "list", "--client", "acme", "--json")
    assert json.loads(listed.stdout) == []


def test_token_issue_without_network_says_it_covers_every_network(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    server_cli(tmp_path, "--database-url", db, "client", "add", "acme")
    server_cli(tmp_path, "--database-url", db, "network", "add", "--client", "acme", "A1")
    r = server_cli(tmp_path, "--database-url", db, "token", "issue", "--client", "acme")
    assert r.returncode == 0
    assert "covers every network of client 'acme', now and later (now: A1)" in r.stderr
    r = server_cli(tmp_path, "--database-url", db, "token", "issue", "--client", "acme", "--rede", "A1")
    assert r.returncode == 0 and "covers every network" not in r.stderr
