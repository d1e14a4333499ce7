"""The change generation (see models.ServerState): bumped in the transaction of every change
that affects authorization or what is served, so every worker's cache drops stale entries.
On PostgreSQL the same transaction announces the new generation on `change_watch.CHANNEL`
(delivered at commit, dropped on rollback), which moves the workers' poll stamps."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from flageemonitor.server.change_watch import CHANNEL
from flageemonitor.server.models import ServerState


def bump(s: Session) -> None:
    stmt = (update(ServerState).where(ServerState.id == 1)
            .values(generation=ServerState.generation + 1).returning(ServerState.generation))
    generation = s.execute(stmt).scalar_one_or_none()
    if generation is None:
        s.add(ServerState(id=1, generation=1))
        s.flush()
        generation = 1
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_notify(CHANNEL, str(generation))))
