"""Failed-authentication counters per address and fixed time window, shared by every worker
through the database."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flageemonitor.server.models import AuthFailure

_REQUEST_STATE = text(
    "SELECT (SELECT count FROM auth_failures WHERE address = :address AND bucket = :bucket),"
    " (SELECT generation FROM server_state WHERE id = 1)"
)


def _bucket(now: float, window: int) -> int:
    return int(now // window)


def request_state(db: Connection | Session, address: str, now: float, window: int) -> tuple[int, int]:
    """(failed authentications of `address` in this window, change generation) in one round trip.

    Plain SQL on a plain connection: this runs on every request, the ORM adds nothing here.
    """
    conn = db.connection() if isinstance(db, Session) else db
    row = conn.execute(_REQUEST_STATE, {"address": address, "bucket": _bucket(now, window)}).one()
    return int(row[0] or 0), int(row[1] or 0)


def failures(s: Session, address: str, now: float, window: int) -> int:
    count = s.scalar(
        select(AuthFailure.count).where(AuthFailure.address == address, AuthFailure.bucket == _bucket(now, window))
    )
    return int(count or 0)


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


def retry_after(now: float, window: int) -> int:
    return max(1, int(window - (now % window)) + 1)
