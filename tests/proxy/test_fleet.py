"""The loopback fleet stops exactly what it started, even after its owner was killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from devtools.fleet import PERSONAS, Fleet, reap_orphans, start_persona_fleet

from tests.fixtures.sshd import run_on

pytestmark = pytest.mark.slow

SCRIPT = """
import os, signal
from devtools.fleet import start_persona_fleet
fleet = start_persona_fleet()
print(fleet.base, " ".join(map(str, sorted(fleet.pids))), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_fleet_of_a_killed_owner_is_reaped_by_its_recorded_pids() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False)
    base_text, *pid_texts = proc.stdout.split()
    base, pids = Path(base_text), [int(p) for p in pid_texts]
    assert len(pids) == 7 and all(Path(f"/proc/{p}").exists() for p in pids)  # orphaned sshds still run
    assert base in reap_orphans()
    assert not base.exists()
    assert not any(Path(f"/proc/{p}").exists() and _not_zombie(p) for p in pids)


def _not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_fleet_whose_owner_runs_is_left_alone(persona_fleet: Fleet) -> None:
    base = persona_fleet.base
    assert base not in reap_orphans()
    assert (base / "owner").read_text().split()[0] == str(os.getpid())


def test_stop_ends_daemons_started_inside_a_persona(tmp_path: Path) -> None:
    """An agent started over SSH detaches from the session and outlives sshd: stop finds it by the
    persona tree its root directory points into."""
    fleet = start_persona_fleet((PERSONAS[0],))
    try:
        (started,) = run_on(fleet, PERSONAS[0].host, ["setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!"],
                            tmp_path / "known_hosts")
        pid = int(started.stdout)
        assert _not_zombie(pid) and os.readlink(f"/proc/{pid}/root").startswith(str(fleet.base))
        assert pid not in fleet.pids
    finally:
        fleet.remove()
    assert not _not_zombie(pid)
