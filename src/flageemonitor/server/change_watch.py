"""Exact, cheap answers to "has the change generation moved?" for the config poll's fast path.

A stamp is read before a full-path request does its database work; an answer remembered under
that stamp may be served again only while the stamp is unchanged. A stamp that cannot be read
is None, and then nothing is served from memory.

SQLite: the stamp is the change generation (see `models.ServerState`: bumped in the transaction
of every change to tokens, networks and configs), re-read only when `PRAGMA data_version` has
moved. That pragma, on a connection of the watch's own that never writes, changes as soon as any
other connection in any process has committed, and reading it is a look at the shared-memory WAL
index (no page read, no round trip). Commits that change nothing the poll serves (check-ins,
reports, last-use times) cost one small read of the generation per worker and keep the
remembered answers.

Other databases have no such local signal: `watch_for` gives None and every poll takes the full
path, which re-reads the change generation (see `server.cache`).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from flageemonitor.server.core.config import sqlite_path


class ChangeWatch(Protocol):
    def stamp(self) -> int | None: ...

    def close(self) -> None: ...


class SqliteWatch:
    """The change generation, re-read from the database only after someone committed."""

    BUSY_TIMEOUT_S = 0.05  # a read in WAL mode waits only for recovery; then the full path answers

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        self._lock = threading.Lock()
        self._data_version: int | None = None
        self._generation: int | None = None

    def stamp(self) -> int | None:
        with self._lock:
            try:
                if self._cursor is None:
                    if not self._path.exists():
                        return None
                    self._conn = sqlite3.connect(
                        self._path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                    )
                    self._cursor = self._conn.cursor()
                data_version = self._cursor.execute("PRAGMA data_version").fetchone()[0]
                if data_version != self._data_version:
                    # read after the data version: a commit in between only makes the next call re-read
                    row = self._cursor.execute("SELECT generation FROM server_state WHERE id = 1").fetchone()
                    self._generation = int(row[0]) if row else 0
                    self._data_version = data_version
                return self._generation
            except sqlite3.Error:
                self._close()
                return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._cursor = None
        self._data_version = self._generation = None


def watch_for(database_url: str) -> ChangeWatch | None:
    """The watch for this database, or None when there is no exact local signal."""
    path = sqlite_path(database_url)
    return SqliteWatch(path) if path is not None else None
