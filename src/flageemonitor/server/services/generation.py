"""The change generation (see models.ServerState): bumped in the transaction of every change
that affects authorization or what is served, so every worker's cache drops stale entries."""

from __future__ import annotations

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from flageemonitor.server.models import ServerState

_CURRENT = select(ServerState.generation).where(ServerState.id == 1)


def current(conn: Connection) -> int:
    """The generation as this connection's transaction sees it (0 before the first change)."""
    return int(conn.scalar(_CURRENT) or 0)


def bump(s: Session) -> None:
    stmt = update(ServerState).where(ServerState.id == 1).values(generation=ServerState.generation + 1)
    if s.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        s.add(ServerState(id=1, generation=1))
        s.flush()
