"""The audit log: who changed what, when."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flageemonitor.server.models import AuditEntry, utcnow


def record(s: Session, actor: str, action: str, target: str, detail: str | None = None) -> None:
    s.add(AuditEntry(actor=actor, action=action, target=target, detail=detail, at=utcnow()))


def entries(s: Session, limit: int = 50, target: str | None = None) -> list[AuditEntry]:
    """The newest `limit` entries, newest first (optionally for one target, e.g. network:DEMO)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target:
        q = q.where(AuditEntry.target == target)
    return list(s.scalars(q))


def summary(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail}
