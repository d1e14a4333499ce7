"""Where each collector left off, per source and store database, in the spool's SQLite file.

A cursor is the position (the source's time column) of the last row spooled, plus the
fingerprints of the rows spooled within the look-back before it. The next run reads from
`position - look-back`, so rows written late still arrive, and skips rows whose fingerprint it
already spooled, so a normal day sends each row once. The fingerprint covers the row's natural key
and its content: a row changed within the look-back (a coupon cancelled a minute later) is sent
again, an unchanged one never.

Cursors are saved in the same transaction as the spooled rows they cover (`save(db, ...)`), so
after a crash the two never disagree. Snapshot sources (no time column) keep the fingerprints of
the whole table instead.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flageemonitor.proxy.collectors.dates import shift

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collector_cursors (
    source TEXT NOT NULL, origin TEXT NOT NULL, position TEXT, updated REAL NOT NULL,
    PRIMARY KEY (source, origin)
);
CREATE TABLE IF NOT EXISTS collector_seen (
    source TEXT NOT NULL, origin TEXT NOT NULL, fingerprint BLOB NOT NULL, position TEXT,
    PRIMARY KEY (source, origin, fingerprint)
) WITHOUT ROWID;
"""


def fingerprint(row_json: str) -> bytes:
    """16 bytes identifying a row by its payload (natural key and content)."""
    return hashlib.blake2b(row_json.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass
class Cursor:
    position: str | None
    seen: set[bytes] = field(default_factory=set)


class CursorStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.executescript(_SCHEMA)

    def load(self, source: str, origin: str, lookback_s: float) -> Cursor:
        row = self.db.execute("SELECT position FROM collector_cursors WHERE source = ? AND origin = ?",
                              (source, origin)).fetchone()
        position = row[0] if row else None
        if position is None:
            seen = {bytes(r[0]) for r in self.db.execute(
                "SELECT fingerprint FROM collector_seen WHERE source = ? AND origin = ?", (source, origin))}
            return Cursor(None, seen)
        seen = {bytes(r[0]) for r in self.db.execute(
            "SELECT fingerprint FROM collector_seen WHERE source = ? AND origin = ? AND position >= ?",
            (source, origin, shift(position, -lookback_s)))}
        return Cursor(position, seen)

    def save(self, db: sqlite3.Connection, source: str, origin: str, position: str,
             fingerprints: Iterable[tuple[bytes, str]], lookback_s: float) -> None:
        """Advance to `position`, remember `fingerprints` (with their positions) and forget those
        older than the look-back. Call inside the spool transaction that spooled the rows."""
        db.execute("INSERT INTO collector_cursors (source, origin, position, updated) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (source, origin) DO UPDATE SET position = excluded.position, "
                   "updated = excluded.updated",
                   (source, origin, position, time.time()))
        db.executemany("INSERT OR REPLACE INTO collector_seen (source, origin, fingerprint, position) "
                       "VALUES (?, ?, ?, ?)", [(source, origin, fp, pos) for fp, pos in fingerprints])
        db.execute("DELETE FROM collector_seen WHERE source = ? AND origin = ? AND position < ?",
                   (source, origin, shift(position, -lookback_s)))

    def save_snapshot(self, db: sqlite3.Connection, source: str, origin: str, fingerprints: Iterable[bytes]) -> None:
        """Replace the remembered rows of a snapshot source with the table as just read."""
        db.execute("DELETE FROM collector_seen WHERE source = ? AND origin = ?", (source, origin))
        db.executemany("INSERT OR IGNORE INTO collector_seen (source, origin, fingerprint, position) "
                       "VALUES (?, ?, ?, NULL)", [(source, origin, fp) for fp in fingerprints])
        db.execute("INSERT INTO collector_cursors (source, origin, position, updated) VALUES (?, ?, NULL, ?) "
                   "ON CONFLICT (source, origin) DO UPDATE SET updated = excluded.updated",
                   (source, origin, time.time()))

    def all(self) -> list[dict[str, Any]]:
        """Every cursor with its fingerprint count, for `status`."""
        counts = {(str(r[0]), str(r[1])): int(r[2]) for r in self.db.execute(
            "SELECT source, origin, COUNT(*) FROM collector_seen GROUP BY source, origin")}
        return [{"source": str(r[0]), "origin": str(r[1]), "position": r[2], "updated": r[3],
                 "remembered_rows": counts.get((str(r[0]), str(r[1])), 0)}
                for r in self.db.execute("SELECT source, origin, position, updated FROM collector_cursors "
                                         "ORDER BY source, origin")]
