"""Group commit for check-ins and run reports: one writer thread per worker process.

Requests hand their validated bodies to `BatchWriter.submit` and wait for the future: it is
resolved only after the transaction holding the body committed, so a 201 means stored. While one
batch commits, the next requests queue up and go together in the next transaction: under load
the cost of a commit is shared, with no added delay when the server is idle. A batch that fails
as a whole is tried once more (two workers racing on one run id, a deadlock), then item by item,
so one bad body never fails the others. Rows are upserted in key order, so that two workers'
batches lock them in the same order.

A body whose sender was authorized from memory carries the change generation of that
authorization (see `api.ingest_fast_path`): the batch reads the generation in its own
transaction and stores such a body only while it is unchanged; otherwise the body's result is
`STALE` and nothing of it is written (its request goes through the full authorization).

On SQLite the workers' writers take turns through an exclusive lock on a file beside the
database, held around each batch transaction: a waiting writer sleeps in the kernel and wakes
the moment the other commits (SQLite's own busy handler polls in steps of up to 100 ms, which
left the database idle while requests waited).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine

from flageemonitor.core.fleet_contract import CheckIn
from flageemonitor.server.core.config import sqlite_path
from flageemonitor.server.services import fleet_ingest, generation
from flageemonitor.server.services.fleet_ingest import Received

log = logging.getLogger("flageemonitor.server.ingest")
MAX_BATCH = 256


@dataclass
class _Job:
    item: Received
    future: Future[Any] = field(default_factory=Future)


_STOP = object()


STALE: Final = "stale"  # the result of a body not stored: the generation its sender was authorized at moved


def apply_batch(conn: Connection, items: list[Received]) -> list[Any]:
    """Store a mixed batch; per item: None for a check-in, the duplicate flag for a run report, or STALE."""
    current = generation.current(conn) if any(i.generation is not None for i in items) else None
    valid = [i.generation is None or i.generation == current for i in items]
    checkins = [i for i, ok in zip(items, valid, strict=True) if ok and isinstance(i.body, CheckIn)]
    runs = [i for i, ok in zip(items, valid, strict=True) if ok and not isinstance(i.body, CheckIn)]
    fleet_ingest.store_checkins(conn, checkins)
    duplicates = iter(fleet_ingest.store_runs(conn, runs) if runs else [])
    return [STALE if not ok else None if isinstance(i.body, CheckIn) else next(duplicates)
            for i, ok in zip(items, valid, strict=True)]


class _TurnLock:
    """An exclusive `flock` on a file beside the SQLite database, shared by every process's writer."""

    def __init__(self, database: Path) -> None:
        self._path = database.with_name(database.name + "-ingest.lock")
        self._fd: int | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class BatchWriter:
    def __init__(self, engine: Engine, apply: Callable[[Connection, list[Received]], list[Any]] = apply_batch,
                 max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._apply = apply
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        database = sqlite_path(str(engine.url)) if engine.dialect.name == "sqlite" else None
        self._turns = _TurnLock(database) if database is not None else None
        self._conn: Connection | None = None  # the writer thread's own, kept between batches

    def submit(self, item: Received) -> Future[Any]:
        job = _Job(item)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ingest-writer", daemon=True)
                self._thread.start()
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
        if self._turns is not None:
            self._turns.close()
        self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection is discarded all the same
                conn.invalidate()
                conn.close()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._write(batch)
            if stop:
                return

    def _transaction(self, items: list[Received]) -> list[Any]:
        """One transaction on the writer's own connection (no pool checkout, no ping per batch); a
        connection that failed is dropped and the next transaction opens a fresh one."""
        turn = self._turns.held() if self._turns is not None else contextlib.nullcontext()
        with turn:
            if self._conn is None:
                self._conn = self._engine.connect()
            conn = self._conn
            try:
                if conn.dialect.name == "sqlite":
                    # take the write lock first: a deferred transaction that reads, then writes, fails
                    # at once (no busy wait) when another process committed in between
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                results = self._apply(conn, items)
                conn.commit()
            except BaseException:
                self._drop_connection()
                raise
            return results

    def _write(self, batch: list[_Job], attempts: int = 2) -> None:
        for attempt in range(attempts):
            try:
                results = self._transaction([job.item for job in batch])
                break
            except Exception:
                if attempt + 1 < attempts:
                    continue  # a lost race (deadlock, duplicate run id from another worker): once more
                if len(batch) == 1:
                    log.exception("storing a report failed")
                    batch[0].future.set_exception(StoreFailed("the report could not be stored; send it again"))
                    return
                for job in batch:  # one body at a time, so that one bad body fails alone
                    self._write([job], attempts=1)
                return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)


class StoreFailed(RuntimeError):
    """The database refused the write: the sender keeps the body and retries."""
