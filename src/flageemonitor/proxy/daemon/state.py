"""What the daemon leaves in the state directory for `status` and `health` to read.

- `daemon.heartbeat.json`: rewritten every few seconds by the scheduler loop (pid, time, config
  version, per-job next tick and whether it is running).
- `run-history.jsonl`: one JSON line per run (or skipped tick), bounded: when the file reaches
  twice `HISTORY_CAP` lines it is rewritten with the newest `HISTORY_CAP`.

Only the standard library here: `flageemonitor health` runs in the image's HEALTHCHECK and must
be fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from flageemonitor.core.atomic import atomic_write

HEARTBEAT_NAME = "daemon.heartbeat.json"
HISTORY_NAME = "run-history.jsonl"
HISTORY_CAP = 1000


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Small state files: atomic, not durable (losing one heartbeat on a crash is harmless)."""
    atomic_write(path, json.dumps(data, default=str, sort_keys=True), durable=False)


def read_heartbeat(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / HEARTBEAT_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, OSError):
        return None
    return data if isinstance(data, dict) else None


class RunHistory:
    """Append-only JSON lines, capped; safe to call from the event loop and worker threads."""

    def __init__(self, state_dir: Path, cap: int = HISTORY_CAP) -> None:
        self.path = state_dir / HISTORY_NAME
        self.cap = cap
        self._lock = threading.Lock()
        self._lines = self._count()

    def _count(self) -> int:
        try:
            with self.path.open("rb") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    def append(self, record: dict[str, Any]) -> None:
        """Append one line whole or not at all: a write cut short (disk full) is cut back off, and a
        torn tail a crash left behind is removed first, so no record is ever glued to a fragment."""
        line = (json.dumps(record, default=str, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                end = _complete_length(fd)
                if end != os.fstat(fd).st_size:
                    os.ftruncate(fd, end)
                try:
                    written = os.write(fd, line)
                    if written != len(line):
                        raise OSError(errno.ENOSPC, f"{self.path}: only {written} of {len(line)} bytes written")
                except OSError:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, end)
                    raise
            finally:
                os.close(fd)
            self._lines += 1
            if self._lines >= 2 * self.cap:
                self._trim()

    def _trim(self) -> None:
        keep = read_history(self.path.parent, self.cap)
        text = "".join(json.dumps(rec, default=str, sort_keys=True) + "\n" for rec in keep)
        atomic_write(self.path, text, durable=False)
        self._lines = len(keep)


def _complete_length(fd: int, chunk: int = 65536) -> int:
    """The length of the file up to and including its last newline (0 without one)."""
    end = os.fstat(fd).st_size
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        data = os.pread(fd, pos - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        pos = start
    return 0


def read_history(state_dir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """The newest `limit` records (all when None), oldest first. Unreadable lines are skipped, and
    so is a last line without its newline (a write in progress, or torn by a crash)."""
    out: deque[dict[str, Any]] = deque(maxlen=limit)
    try:
        with (state_dir / HISTORY_NAME).open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if isinstance(rec, dict):
                        out.append(rec)
    except FileNotFoundError:
        pass
    return list(out)


def heartbeat_age(heartbeat: dict[str, Any], now: float | None = None) -> float:
    return (now or time.time()) - float(heartbeat.get("ts", 0))
