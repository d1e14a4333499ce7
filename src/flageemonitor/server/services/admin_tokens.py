"""Admin API tokens (`fma_...`): issued once in clear, stored as SHA-256, checked on every call.

They are a kind of their own: a client token never passes here, an admin token never fetches
a config or opens a web page. No caching: a revocation holds from the next call on.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flageemonitor.server.core import security
from flageemonitor.server.errors import Invalid, NotFound
from flageemonitor.server.models import AdminToken, as_utc, utcnow
from flageemonitor.server.services import audit

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def issue(s: Session, name: str, actor: str, expires_at: datetime | None = None) -> tuple[str, AdminToken]:
    if not NAME_RE.match(name):
        raise Invalid(f"admin token name {name!r}: use 1..64 letters, digits, '_', '.', '@', '-'")
    clear = security.generate_admin_token()
    row = AdminToken(name=name, token_hash=security.hash_token(clear), prefix=security.display_prefix(clear),
                     created_at=utcnow(), created_by=actor, expires_at=expires_at)
    s.add(row)
    s.flush()
    audit.record(s, actor, "admin_token.issue", f"admin_token:{row.id}", f"name={name}")
    return clear, row


def revoke(s: Session, token_id: int, actor: str) -> AdminToken:
    row = s.get(AdminToken, token_id)
    if row is None:
        raise NotFound(f"unknown admin token id {token_id} (see: flageemonitor-server admin token list)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(s, actor, "admin_token.revoke", f"admin_token:{token_id}")
    return row


def all_tokens(s: Session) -> list[AdminToken]:
    return list(s.scalars(select(AdminToken).order_by(AdminToken.id)))


def summary(row: AdminToken) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "prefix": row.prefix, "created_at": row.created_at.isoformat(),
        "created_by": row.created_by, "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked": row.revoked_at is not None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }


def check(s: Session, clear: str, now: datetime) -> tuple[AdminToken | None, str]:
    """(the token, "") when it may be used now; else (None or the token, the reason)."""
    if not security.well_formed_admin(clear):
        return None, "unknown"
    row = s.scalar(select(AdminToken).where(AdminToken.token_hash == security.hash_token(clear)))
    if row is None:
        return None, "unknown"
    if row.revoked_at is not None:
        return row, "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        return row, "expired"
    row.last_used_at = now
    return row, ""
