"""Config secrets at rest: a private database file, sealed values, redacted views, rotation."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.fixtures.server import ControlPlane, ControlPlaneFactory

pytestmark = pytest.mark.slow  # CLI processes and real server starts

ZBX, SSH = "zbx-Secret-4711", "ssh-Secret-0815"


def admin(workdir: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as an operator runs it: umask 022, key file from the default place."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGEEMONITOR_")}
    return subprocess.run([sys.executable, "-m", "flageemonitor.server.cli", "--database-url", str(db), *args],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(0o022), check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_key_are_private_and_secrets_never_stored_in_clear(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"  # a plain path is accepted as a SQLite file
    for args in (("db", "upgrade"), ("client", "add", "acme"), ("network", "add", "--client", "acme", "ACME01")):
        r = admin(tmp_path, db, *args)
        assert r.returncode == 0, r.stderr
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"PARAM_ZABBIX_PASSWORD": ZBX, "PARAM_SSH_PASSWORD": SSH, "max_threads": 5}))
    r = admin(tmp_path, db, "config", "set", "--network", "ACME01", str(cfg))
    assert r.returncode == 0, r.stderr
    members = [p for p in tmp_path.iterdir() if p.name.startswith("demo.db")]
    assert {p.name for p in members} >= {"demo.db"}
    for member in [*members, tmp_path / "flageemonitor.key"]:
        assert mode(member) == 0o600, (member.name, oct(mode(member)))
    for member in members:
        raw = member.read_bytes()
        assert ZBX.encode() not in raw and SSH.encode() not in raw, member.name

    shown = admin(tmp_path, db, "config", "show", "--network", "ACME01")
    assert ZBX not in shown.stdout and SSH not in shown.stdout
    assert json.loads(shown.stdout)["PARAM_ZABBIX_PASSWORD"] == "***"
    clear = admin(tmp_path, db, "config", "show", "--network", "ACME01", "--show-secrets")
    assert json.loads(clear.stdout)["PARAM_ZABBIX_PASSWORD"] == ZBX

    cfg.write_text(json.dumps({"PARAM_ZABBIX_PASSWORD": ZBX + "-new", "PARAM_SSH_PASSWORD": SSH, "max_threads": 5}))
    assert admin(tmp_path, db, "config", "set", "--network", "ACME01", str(cfg)).returncode == 0
    diff = admin(tmp_path, db, "config", "diff", "--network", "ACME01").stdout
    assert '+  "PARAM_ZABBIX_PASSWORD": "*** (changed)"' in diff
    assert SSH not in diff and ZBX not in diff
    assert "-  \"PARAM_SSH_PASSWORD\"" not in diff  # unchanged secrets are context, not changes
    history = admin(tmp_path, db, "config", "history", "--network", "ACME01", "--json").stdout
    assert ZBX not in history and SSH not in history
    clear_diff = admin(tmp_path, db, "config", "diff", "--network", "ACME01", "--show-secrets").stdout
    assert f'+  "PARAM_ZABBIX_PASSWORD": "{ZBX}-new"' in clear_diff


def test_the_proxy_receives_the_secrets_and_rotation_keeps_serving_them(
    control_plane_factory: ControlPlaneFactory,
) -> None:
    cp: ControlPlane = control_plane_factory(config={"PARAM_ZABBIX_PASSWORD": ZBX, "PARAM_SSH_PASSWORD": SSH})
    first = httpx.get(cp.config_url, headers=cp.headers())
    assert first.status_code == 200
    assert first.json()["PARAM_ZABBIX_PASSWORD"] == ZBX and first.json()["PARAM_SSH_PASSWORD"] == SSH
    with cp.session() as s:
        stored = s.execute(text("SELECT body FROM config_versions")).scalar_one()
    assert ZBX not in stored and "enc:v1:" in stored
    old_key = cp.key_file.read_bytes().split()[0]
    r = cp.admin("secrets", "rotate")
    assert r.returncode == 0 and "1 config version(s) re-encrypted" in r.stdout, r.stderr
    keys = cp.key_file.read_bytes().split()
    assert len(keys) == 2 and keys[1] == old_key and mode(cp.key_file) == 0o600
    cp.key_file.write_bytes(keys[0] + b"\n")  # the old key removed: everything opens with the new one
    cp.stop()
    cp.start()
    again = httpx.get(cp.config_url, headers=cp.headers())
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]


def test_upgrade_seals_secrets_stored_in_clear_by_earlier_versions(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "plane", config={"PARAM_ZABBIX_PASSWORD": ZBX})
    body = json.dumps({"PARAM_REDE": cp.rede, "PARAM_ZABBIX_PASSWORD": ZBX, "CONFIG_VERSION": 1}, indent=2) + "\n"
    with cp.session() as s:  # what a server before encryption at rest left behind
        s.execute(text("UPDATE config_versions SET body = :b"), {"b": body})
    r = cp.admin("db", "upgrade")
    assert r.returncode == 0 and "encrypted the secrets of 1 stored config version(s)" in r.stderr, r.stderr
    with cp.session() as s:
        assert ZBX not in s.execute(text("SELECT body FROM config_versions")).scalar_one()
    shown = cp.admin("config", "show", "--network", cp.rede, "--show-secrets")
    assert json.loads(shown.stdout)["PARAM_ZABBIX_PASSWORD"] == ZBX
