"""Parallel `config set` processes against one database (SQLite and PostgreSQL): every writer
gets its own version, no traceback, no secret in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.server import ControlPlane

pytestmark = pytest.mark.slow

WRITERS = 8


def test_parallel_config_set_allocates_distinct_versions_and_never_prints_a_traceback(
    db_url: str, tmp_path: Path
) -> None:
    plane = ControlPlane(tmp_path / "plane", database_url=db_url)  # client, network TESTNET, version 1
    # the fixture's key file, and a private working directory: nothing lands in the checkout
    env = {**os.environ, **plane.env, "FLAGEEMONITOR_DATABASE_URL": db_url}
    procs = []
    for i in range(WRITERS):
        path = tmp_path / f"config-{i}.json"
        path.write_text(json.dumps({"PARAM_ZABBIX_PASSWORD": f"zbx-secret-{i}", "PARAM_SSH_PASSWORD": f"ssh-pw-{i}",
                                    "TIMEZONE": "UTC", "NOTE": f"writer {i}"}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "flageemonitor.server.cli", "config", "set", "--network", plane.rede,
             "--comment", f"writer {i}", str(path)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=180) for p in procs]
    for i, (p, (out, err)) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, (i, out, err)
        assert "Traceback" not in out + err
        for secret in (f"zbx-secret-{i}", f"ssh-pw-{i}"):
            assert secret not in out + err
    stored = plane.admin("config", "history", "--network", plane.rede, "--json", check=True)
    versions = [row["version"] for row in json.loads(stored.stdout)]
    assert versions == list(range(1, WRITERS + 2))  # the fixture's version 1, then one per writer
    reported = sorted(int(out.split("config version ")[1].split()[0]) for out, _ in outputs)
    assert reported == list(range(2, WRITERS + 2))
