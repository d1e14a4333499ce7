"""The audit log: who changed what, when.

Every field is stored with control and invisible formatting characters escaped (`\\n`, `\\x1b`,
`\\u202e`...), so an entry is one line wherever it is printed: a comment cannot forge a line
for another actor, nor hide text from a terminal.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flageemonitor.server.models import AuditEntry, utcnow


def escape(value: str) -> str:
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in _HIDDEN:
            code = ord(ch)
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or
                       (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"))
        else:
            out.append(ch)
    return "".join(out)


_HIDDEN = {"Cc", "Cf", "Zl", "Zp"}  # controls, formatting (bidi overrides), line/paragraph separators


def record(s: Session, actor: str, action: str, target: str, detail: str | None = None) -> None:
    s.add(AuditEntry(actor=escape(actor), action=escape(action), target=escape(target),
                     detail=escape(detail) if detail is not None else None, at=utcnow()))


def entries(s: Session, limit: int = 50, target: str | None = None) -> list[AuditEntry]:
    """The newest `limit` entries, newest first (optionally for one target, e.g. network:DEMO)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target:
        q = q.where(AuditEntry.target == target)
    return list(s.scalars(q))


def summary(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor, "action": entry.action,
            "target": entry.target, "detail": entry.detail}
