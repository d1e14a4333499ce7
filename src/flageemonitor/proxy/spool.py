"""The proxy's durable outbox: named, ordered, bounded queues in one SQLite file (WAL) on the state volume.

Rules every producer and consumer relies on:

- An item is opaque bytes (a request body) plus the number of records it carries. `put` returns
  after its transaction committed: what a producer was told is spooled survives `kill -9` and the
  replacement of the container (the file lives in `FLAGEEMONITOR_STATE_DIR`). With `durable=True`
  (`synchronous=FULL`, an fsync per commit) it also survives a power cut. With `durable=False`
  (`synchronous=NORMAL`) a power cut may roll back the last transactions, never corrupt the file:
  a producer that commits its read position in the same transaction (the collectors' cursor)
  then reads those records again from its source, so nothing is lost.
- Items of a queue are handed out (`peek`) in insertion order and leave only through `ack` /
  `ack_many`, called once the destination acknowledged them. A consumer may have several items in
  flight and acknowledge each as its answer comes. A consumer that dies before acknowledging
  leaves the item for the next one (at-least-once); an acknowledgement rolled back by a power cut
  means one more delivery, never a loss.
- The items of one `put` share their `created` time: a consumer can tell which items were spooled
  together (one producer transaction) and keep the items of different transactions in order.
- Each queue is bounded in bytes. A `put` that would exceed the bound drops the queue's oldest
  items first, logs an ERROR naming the queue and what was dropped, and adds the dropped items
  and records to the queue's persistent counters (shown by `flageemonitor status`). Never silent.
- Other tables may share the file and commit atomically with a `put` (`transaction()`), so a
  producer's read position and the items it spooled can never disagree after a crash.
- `consumer_lock(queue)` gives one consumer per queue across processes (an `flock` the kernel
  releases when the holder dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("flageemonitor.spool")

SPOOL_NAME = "spool.sqlite3"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
BUSY_TIMEOUT_MS = 60_000
WAL_CHECKPOINT_PAGES = 16_384  # 64 MiB of WAL between checkpoints: fewer fsyncs while a backlog streams
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:@/=-]{1,200}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    created REAL NOT NULL,
    records INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS spool_items_queue ON spool_items (queue, id);
CREATE TABLE IF NOT EXISTS spool_queues (
    queue TEXT PRIMARY KEY,
    dropped_items INTEGER NOT NULL DEFAULT 0,
    dropped_records INTEGER NOT NULL DEFAULT 0,
    delivered_items INTEGER NOT NULL DEFAULT 0,
    last_delivery REAL,
    last_error TEXT,
    last_error_at REAL
);
"""


class SpoolError(Exception):
    """The spool file cannot be opened, read or written (disk full, permissions, corruption): every
    `Spool` method raises this, never a bare sqlite3 error."""


@dataclass(frozen=True)
class Item:
    id: int
    queue: str
    created: float
    records: int
    body: bytes


@dataclass(frozen=True)
class QueueStats:
    queue: str
    items: int
    records: int
    bytes: int
    oldest: float | None
    dropped_items: int
    dropped_records: int
    delivered_items: int
    last_delivery: float | None
    last_error: str | None
    last_error_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def spool_path(state_dir: Path) -> Path:
    return state_dir / SPOOL_NAME


def check_queue_name(queue: str) -> str:
    if not _QUEUE_NAME.match(queue):
        raise ValueError(f"invalid queue name {queue!r}")
    return queue


class Spool:
    """One connection to the spool file. Use one instance per thread."""

    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, durable: bool = True) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._last_put = 0.0
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._db = self._open(path, durable)
                break
            except sqlite3.OperationalError as exc:
                # switching a new file to WAL needs a moment alone: another process or thread
                # opening it at the same time gets "locked" at once, whatever the busy timeout
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise SpoolError(f"spool {path}: {exc}") from None
                time.sleep(0.05)
            except (sqlite3.Error, OSError) as exc:
                raise SpoolError(f"spool {path}: {getattr(exc, 'strerror', None) or exc}") from None

    @staticmethod
    def _open(path: Path, durable: bool) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    # --- plumbing
    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); other tables may be written inside.
        A database error (a full disk at COMMIT, a locked or corrupt file) leaves as SpoolError."""
        with self._failures("write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # a failed COMMIT may have rolled back already
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot {what}: {exc}") from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- producers
    def put(self, queue: str, items: Iterable[tuple[bytes, int]], *, db: sqlite3.Connection | None = None) -> int:
        """Append (body, records) items to `queue`; returns how many. Inside `transaction()` pass
        its connection as `db` (the caller commits); otherwise this commits on its own."""
        check_queue_name(queue)
        now = self._last_put = max(time.time(), self._last_put + 1e-3)  # each put its own time
        rows = [(queue, now, int(records), len(body), body) for body, records in items]
        if not rows:
            return 0
        if db is None:
            with self.transaction() as own:
                self._insert(own, queue, rows)
        else:
            self._insert(db, queue, rows)
        return len(rows)

    def replace(self, queue: str, items: Iterable[tuple[bytes, int]]) -> int:
        """Drop what `queue` holds and append `items`, in one transaction: a queue where only the
        latest item matters (the proxy's check-in)."""
        with self.transaction() as db:
            db.execute("DELETE FROM spool_items WHERE queue = ?", (check_queue_name(queue),))
            return self.put(queue, items, db=db)

    def _insert(self, db: sqlite3.Connection, queue: str, rows: list[tuple[str, float, int, int, bytes]]) -> None:
        try:
            db.executemany("INSERT INTO spool_items (queue, created, records, size, body) VALUES (?, ?, ?, ?, ?)",
                           rows)
            self._enforce_bound(db, queue)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path}: cannot write to queue {queue}: {exc}") from None

    def _enforce_bound(self, db: sqlite3.Connection, queue: str) -> None:
        (total,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM spool_items WHERE queue = ?", (queue,)).fetchone()
        excess = int(total) - self.max_bytes
        if excess <= 0:
            return
        ids: list[int] = []
        freed = records = 0
        for item_id, size, count in db.execute(
                "SELECT id, size, records FROM spool_items WHERE queue = ? ORDER BY id", (queue,)):
            if freed >= excess:
                break
            ids.append(int(item_id))
            freed += int(size)
            records += int(count)
        db.executemany("DELETE FROM spool_items WHERE id = ?", [(i,) for i in ids])
        db.execute("INSERT INTO spool_queues (queue) VALUES (?) ON CONFLICT (queue) DO NOTHING", (queue,))
        db.execute("UPDATE spool_queues SET dropped_items = dropped_items + ?, dropped_records = dropped_records + ? "
                   "WHERE queue = ?", (len(ids), records, queue))
        log.error("SPOOL FULL: queue %s is over its bound of %d bytes; DROPPED its %d oldest item(s) (%d records, "
                  "%d bytes). Raise PARAM_SPOOL_MAX_MB or fix the destination.", queue, self.max_bytes, len(ids),
                  records, freed)

    # --- consumers
    def peek(self, queue: str, limit: int = 100, *, after: int = 0) -> list[Item]:
        """The oldest `limit` items of `queue` with an id above `after`, oldest first."""
        with self._failures("read"):
            cur = self._db.execute(
                "SELECT id, queue, created, records, body FROM spool_items WHERE queue = ? AND id > ? ORDER BY id "
                "LIMIT ?", (queue, after, limit))
            return [Item(int(r[0]), str(r[1]), float(r[2]), int(r[3]), bytes(r[4])) for r in cur]

    def ack(self, item: Item) -> None:
        """The destination acknowledged `item`: remove it for good (one small commit)."""
        with self._failures("acknowledge"):
            self._db.execute("DELETE FROM spool_items WHERE id = ?", (item.id,))

    def ack_many(self, items: Sequence[Item]) -> None:
        """The destination acknowledged every one of `items`: remove them in one commit."""
        if len(items) == 1:
            self.ack(items[0])
        elif items:
            with self.transaction() as db:
                db.executemany("DELETE FROM spool_items WHERE id = ?", [(i.id,) for i in items])

    def delivered(self, queue: str, items: int) -> None:
        """Add `items` acknowledged items to the queue's counter (call once per drain, not per item)."""
        if items <= 0:
            return
        with self.transaction() as db:
            db.execute("INSERT INTO spool_queues (queue) VALUES (?) ON CONFLICT (queue) DO NOTHING", (queue,))
            db.execute("UPDATE spool_queues SET delivered_items = delivered_items + ?, last_delivery = ? "
                       "WHERE queue = ?", (items, time.time(), queue))

    def note_error(self, queue: str, error: str) -> None:
        """Remember the last delivery error of `queue` (shown by `status`)."""
        with self.transaction() as db:
            db.execute("INSERT INTO spool_queues (queue) VALUES (?) ON CONFLICT (queue) DO NOTHING", (queue,))
            db.execute("UPDATE spool_queues SET last_error = ?, last_error_at = ? WHERE queue = ?",
                       (error[:500], time.time(), queue))

    def move(self, item: Item, queue: str) -> None:
        """Move `item` to another queue (a destination refused it for good: keep it for people)."""
        check_queue_name(queue)
        with self.transaction() as db:
            db.execute("UPDATE spool_items SET queue = ? WHERE id = ?", (queue, item.id))
            self._enforce_bound(db, queue)

    # --- observers
    def stats(self, queues: Sequence[str] | None = None) -> list[QueueStats]:
        """Depth and counters of every queue that has items or history (or of `queues`)."""
        with self._failures("read"):
            depth = {str(r[0]): r[1:] for r in self._db.execute(
                "SELECT queue, COUNT(*), COALESCE(SUM(records), 0), COALESCE(SUM(size), 0), MIN(created) "
                "FROM spool_items GROUP BY queue")}
            meta = {str(r[0]): r[1:] for r in self._db.execute(
                "SELECT queue, dropped_items, dropped_records, delivered_items, last_delivery, last_error, "
                "last_error_at FROM spool_queues")}
        names = sorted(set(queues) if queues is not None else set(depth) | set(meta))
        out = []
        for name in names:
            d = depth.get(name, (0, 0, 0, None))
            m = meta.get(name, (0, 0, 0, None, None, None))
            out.append(QueueStats(name, int(d[0]), int(d[1]), int(d[2]), d[3], int(m[0]), int(m[1]), int(m[2]),
                                  m[3], m[4], m[5]))
        return out


@contextlib.contextmanager
def consumer_lock(state_dir: Path, name: str, *, role: str = "run", wait_for: str | None = None,
                  wait_s: float = 0.0) -> Iterator[bool]:
    """Yields True when this process holds the exclusive lock `name`, else False.

    The lock file lives in `<state dir>/locks/`; the kernel releases it when the holder dies. The
    holder's `role` is written in the file while it holds it: a contender that finds the lock held
    by `wait_for` (a background drain, which lets go after its current item) waits up to `wait_s`
    for it; held by anyone else, it gives up at once."""
    locks = state_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", name)
    fd = os.open(locks / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _acquire(fd, wait_for, wait_s):
            yield False
            return
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, role.encode("ascii", "replace"), 0)
            yield True
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


LOCK_ROLE_GRACE_S = 0.5  # a new holder writes its role right after taking the lock


def _acquire(fd: int, wait_for: str | None, wait_s: float) -> bool:
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        if wait_for is None or waited >= wait_s:
            return False
        holder = os.pread(fd, 64, 0).decode("ascii", "replace")
        if holder != wait_for and (holder or waited >= LOCK_ROLE_GRACE_S):
            return False
        time.sleep(0.05)
