"""Failed-authentication counters per address, shared by every worker through the database.

Counted per fixed window of `window` seconds and read as a sliding window: the failures of the
last `window` seconds are estimated as all of this window's plus the previous window's weighted
by the part of it still inside. A burst across a window's edge therefore meets the same limit as
one inside a window (fixed windows alone would reset at the edge and allow twice the limit). An
address is limited while the estimate rounds to the limit or more; nothing is counted while it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flageemonitor.server.models import AuthFailure

_REQUEST_STATE = text(
    "SELECT (SELECT count FROM auth_failures WHERE address = :address AND bucket = :bucket),"
    " (SELECT count FROM auth_failures WHERE address = :address AND bucket = :bucket - 1),"
    " (SELECT generation FROM server_state WHERE id = 1)"
)


def _bucket(now: float, window: int) -> int:
    return int(now // window)


@dataclass(frozen=True)
class Failures:
    """One address's failed authentications in the current window and the one before it."""

    current: int = 0
    previous: int = 0

    def estimate(self, now: float, window: int) -> float:
        """Failures in the last `window` seconds (see the module's rule)."""
        return self.current + self.previous * (1 - (now % window) / window)

    def limited(self, limit: int, now: float, window: int) -> bool:
        return self.estimate(now, window) > limit - 0.5

    def retry_after(self, limit: int, now: float, window: int) -> int:
        """Whole seconds until the estimate falls below the limit, with no further failures
        (an address over the limit is not counted further); at least 1."""
        start = now - now % window
        room = limit - 0.5
        if self.current < room:  # only the previous window's share holds it: it fades within this one
            fade = 1 - (room - self.current) / self.previous if self.previous else 0.0
        else:  # this window's own failures hold it: they fade within the next one
            fade = 2 - room / self.current
        at = start + window * fade
        return max(1, math.ceil(at - now + 1e-6))  # past the crossing, whatever the float rounding


def request_state(db: Connection | Session, address: str, now: float, window: int) -> tuple[Failures, int]:
    """(failed authentications of `address`, change generation) in one round trip.

    Plain SQL on a plain connection: this runs on every request, the ORM adds nothing here.
    """
    conn = db.connection() if isinstance(db, Session) else db
    row = conn.execute(_REQUEST_STATE, {"address": address, "bucket": _bucket(now, window)}).one()
    return Failures(int(row[0] or 0), int(row[1] or 0)), int(row[2] or 0)


def failures(s: Session, address: str, now: float, window: int) -> Failures:
    """The failed authentications of `address` (current and previous window)."""
    return request_state(s, address, now, window)[0]


def record_failure(s: Session, address: str, now: float, window: int) -> None:
    bucket = _bucket(now, window)
    stmt = (
        update(AuthFailure)
        .where(AuthFailure.address == address, AuthFailure.bucket == bucket)
        .values(count=AuthFailure.count + 1)
    )
    if s.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        try:
            with s.begin_nested():
                s.add(AuthFailure(address=address, bucket=bucket, count=1))
        except IntegrityError:  # another worker inserted the row first
            s.execute(stmt)
        s.execute(delete(AuthFailure).where(AuthFailure.bucket < bucket - 1))
    s.commit()
