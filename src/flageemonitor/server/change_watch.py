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

PostgreSQL: the stamp is the change generation as last announced on the `CHANNEL`
notification channel. `generation.bump` issues `NOTIFY` in the transaction of every change, so
PostgreSQL delivers it at commit, with the new generation as payload. Each worker keeps one
connection of its own that only LISTENs, in a thread, and moves the stamp on every notification.
While that connection is not known good (not yet connected, dropped, reconnecting) the stamp is
None and the full path answers. On every (re)connect the generation is read after LISTEN is in
place: a change committed before is in that read, one committed after is notified, so none is
missed across a reconnect.

A change committed by the worker's own process (an admin API request) is exact: the committing
session tells the process's watches (`committed`), which answer None until their own
notification has arrived. The remaining window, for changes made by other processes (the CLI,
other workers and servers): delivery is asynchronous. Between a change's commit and the moment
the worker's listening thread has taken its notification (PostgreSQL signals the listening
backend at commit, which sends it on; typically well under a millisecond on one host, longer on
a loaded machine or a slow network), a poll can still be answered from memory as before the
change. A connection the database closes (restart, `pg_terminate_backend`) is noticed at once; one
the network silently loses only by TCP keepalive (`KEEPALIVE`, about 25 s), and changes committed
meanwhile reach that worker's fast path only when it reconnects. The tests bound the window:
after every change made from outside the server they wait, with a deadline, until each worker's
watch reports the change's generation (`WATCH_GENERATION`) and then require the very next
request to see it; a change made inside the server must be seen by the next request without
waiting; a killed listener is shown to send polls to the full path until it is back.

Other databases have no such signal: `watch_for` gives None and every poll takes the full path,
which re-reads the change generation (see `server.cache`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import make_url

from flageemonitor.server.core.config import sqlite_path
from flageemonitor.server.metrics import WATCH_GENERATION

CHANNEL = "flageemonitor_changes"
APPLICATION_NAME = "flageemonitor-change-watch"
# (idle s, interval s, probes): a silently lost connection is given up after about 25 s
KEEPALIVE = (10, 5, 3)
log = logging.getLogger("flageemonitor.server.change_watch")


class ChangeWatch(Protocol):
    def stamp(self) -> int | None: ...

    def start(self) -> None: ...

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

    def start(self) -> None:
        """Nothing to start: the database is opened on the first stamp."""

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._cursor = None
        self._data_version = self._generation = None


_WATCHES: weakref.WeakSet[PostgresWatch] = weakref.WeakSet()


def committed(generation: int) -> None:
    """This process has committed `generation`: no watch of it may serve an older stamp now."""
    for watch in list(_WATCHES):
        watch.expect(generation)


class PostgresWatch:
    """The change generation as announced by `NOTIFY`, kept by one listening thread per worker."""

    POLL_S = 0.5  # how often the listening thread looks at its stop flag
    RETRY_S = (0.1, 2.0)  # first and longest pause between connection attempts

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._expected = 0  # a generation committed here, not yet announced to this watch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _WATCHES.add(self)

    def stamp(self) -> int | None:
        generation = self._generation
        if generation is None or generation < self._expected:
            return None
        return generation

    def expect(self, generation: int) -> None:
        with self._lock:
            self._expected = max(self._expected, generation)

    def start(self) -> None:
        """Start listening (once per worker: call it in the worker's process, not before a fork)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="change-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.POLL_S * 4)
        self._set(None)

    def _set(self, generation: int | None) -> None:
        with self._lock:
            self._generation = generation
        if generation is not None:
            WATCH_GENERATION.set(generation)

    def _advance(self, payload: str) -> None:
        """Generations only grow: a notification older than the stamp changes nothing."""
        try:
            announced = int(payload)
        except ValueError:
            announced = None
        with self._lock:
            if self._generation is None:
                return
            if announced is None:
                # not ours to read: the worker cannot tell what changed, so the next connect decides
                raise psycopg.DataError(f"unexpected notification payload on {CHANNEL}")
            self._generation = max(self._generation, announced)
            generation = self._generation
        WATCH_GENERATION.set(generation)

    def _run(self) -> None:
        pause = self.RETRY_S[0]
        dropped = False
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    row = conn.execute("SELECT generation FROM server_state WHERE id = 1").fetchone()
                    self._set(int(row[0]) if row else 0)
                    if dropped:
                        log.info("change watch listening again: polls are answered from memory")
                    dropped, pause = False, self.RETRY_S[0]
                    while not self._stop.is_set():
                        for notification in conn.notifies(timeout=self.POLL_S):
                            self._advance(notification.payload)
            except psycopg.Error as exc:
                self._set(None)
                if not dropped:
                    log.warning("change watch lost its database connection (%s): polls take the full path "
                                "until it is back", type(exc).__name__)
                dropped = True
                self._stop.wait(pause)
                pause = min(pause * 2, self.RETRY_S[1])
        self._set(None)

    def _connect(self) -> Any:
        idle, interval, count = KEEPALIVE
        return psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=3, application_name=APPLICATION_NAME,
            keepalives=1, keepalives_idle=idle, keepalives_interval=interval, keepalives_count=count,
        )


def watch_for(database_url: str) -> ChangeWatch | None:
    """The watch for this database, or None when there is no exact change signal."""
    path = sqlite_path(database_url)
    if path is not None:
        return SqliteWatch(path)
    if database_url.startswith("postgresql"):
        return PostgresWatch(database_url)
    return None
