"""The change generation (see models.ServerState): bumped in the transaction of every change
that affects authorization or what is served, so every worker's cache drops stale entries.
On PostgreSQL the same transaction announces the new generation on `change_watch.CHANNEL`
(delivered at commit, dropped on rollback), which moves the workers' poll stamps; this
process's own watches are told right after the commit."""

from __future__ import annotations

from sqlalchemy import Connection, event, func, select, update
from sqlalchemy.orm import Session

from flageemonitor.server import change_watch
from flageemonitor.server.models import ServerState

_CURRENT = select(ServerState.generation).where(ServerState.id == 1)


def current(conn: Connection) -> int:
    """The generation as this connection's transaction sees it (0 before the first change)."""
    return int(conn.scalar(_CURRENT) or 0)


def bump(s: Session) -> None:
    stmt = (update(ServerState).where(ServerState.id == 1)
            .values(generation=ServerState.generation + 1).returning(ServerState.generation))
    generation = s.execute(stmt).scalar_one_or_none()
    if generation is None:
        s.add(ServerState(id=1, generation=1))
        s.flush()
        generation = 1
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_notify(change_watch.CHANNEL, str(generation))))
        # this process's own watches must not wait for the notification
        if not event.contains(s, "after_commit", _announce_here):
            event.listen(s, "after_commit", _announce_here)
            event.listen(s, "after_rollback", _forget)
        s.info[_BUMPED] = generation


_BUMPED = "flageemonitor.bumped_generation"


def _announce_here(s: Session) -> None:
    generation = s.info.pop(_BUMPED, None)
    if generation is not None:
        change_watch.committed(generation)


def _forget(s: Session) -> None:
    s.info.pop(_BUMPED, None)
