"""Retention of run reports and what goes stale with them, pruned in small transactions.

Kept: run reports received within `run_retention_days`, and at most `run_retention_rows` per
network (the newest). Proxies not seen for `run_retention_days` are removed with their runs;
endpoint states older than that and expired web sessions go too. Each delete takes at most
`batch` rows, so writers wait for one short transaction at a time, never for the whole prune.
With PostgreSQL one worker prunes at a time (an advisory lock); the others skip that round.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Engine, Table, delete, select, text

from flageemonitor.server.core.config import Settings
from flageemonitor.server.models import EndpointStatus, Network, Proxy, Run, WebSession

log = logging.getLogger("flageemonitor.server.retention")
LOCK_ID = 720520
BATCH = 2000
_RUNS: Table = Run.__table__  # type: ignore[assignment]


@dataclass
class Pruned:
    runs: int = 0
    proxies: int = 0
    endpoints: int = 0
    sessions: int = 0


def _delete_batched(engine: Engine, table: Table, key: ColumnElement[int], where: ColumnElement[bool],
                    batch: int) -> int:
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.scalars(select(key).where(where).limit(batch)))
            if not ids:
                return removed
            conn.execute(delete(table).where(key.in_(ids)))
            removed += len(ids)


def _try_lock(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.scalar(text("SELECT pg_try_advisory_lock(:id)"), {"id": LOCK_ID}))


def prune(engine: Engine, settings: Settings, now: datetime, batch: int = BATCH) -> Pruned | None:
    """One pass; None when another worker holds the prune lock."""
    with engine.connect() as lock_conn:
        if not _try_lock(lock_conn):
            return None
        try:
            return _prune(engine, settings, now, batch)
        finally:
            if lock_conn.dialect.name == "postgresql":
                lock_conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                lock_conn.commit()


def _prune(engine: Engine, settings: Settings, now: datetime, batch: int) -> Pruned:
    cutoff = now - timedelta(days=settings.run_retention_days)
    done = Pruned()
    done.runs = _delete_batched(engine, _RUNS, _RUNS.c.id, _RUNS.c.received_at < cutoff, batch)
    with engine.connect() as conn:
        network_ids = list(conn.scalars(select(Network.id)))
    for network_id in network_ids:
        with engine.connect() as conn:
            boundary = conn.scalar(
                select(Run.id).where(Run.network_id == network_id).order_by(Run.id.desc())
                .offset(settings.run_retention_rows).limit(1)
            )
        if boundary is not None:
            done.runs += _delete_batched(engine, _RUNS, _RUNS.c.id,
                                         (_RUNS.c.network_id == network_id) & (_RUNS.c.id <= boundary), batch)
    proxies: Table = Proxy.__table__  # type: ignore[assignment]
    done.proxies = _delete_batched(engine, proxies, proxies.c.id, proxies.c.last_seen < cutoff, batch)
    with engine.begin() as conn:
        done.endpoints = int(conn.execute(delete(EndpointStatus).where(EndpointStatus.finished_at < cutoff))
                             .rowcount or 0)  # type: ignore[attr-defined]
        done.sessions = int(conn.execute(delete(WebSession).where(WebSession.expires_at <= now))
                            .rowcount or 0)  # type: ignore[attr-defined]
    return done


class Pruner:
    """A background thread pruning every `settings.retention_interval` seconds (first pass soon after start)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = min(self._settings.retention_interval, 30.0)
        while not self._stop.wait(delay):
            try:
                result = prune(self._engine, self._settings, datetime.now(UTC))
                if result is not None and (result.runs or result.proxies):
                    log.info("retention: removed %d runs, %d proxies, %d endpoint states", result.runs,
                             result.proxies, result.endpoints)
            except Exception as exc:  # the next pass tries again; requests are never affected
                log.warning("retention pass failed: %s", exc)
            self.passes += 1
            delay = self._settings.retention_interval
