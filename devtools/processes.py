"""Stopping processes this project started, with everything they spawned."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path


def stop_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str], grace_s: float = 15.0) -> None:
    """SIGTERM the process group led by `proc` (started with `start_new_session=True`), wait up
    to `grace_s`, then SIGKILL it. A process that already ended is left alone."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def group_processes(pgid: int) -> Iterator[tuple[Path, list[str]]]:
    """Each live process of the process group `pgid`: its /proc directory and the fields of its
    `stat` after the command name (state first: utime is [11], stime [12])."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                yield entry, fields
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
