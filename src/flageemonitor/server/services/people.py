"""People who sign in to the web pages, and their sessions.

Passwords are hashed with Argon2id (argon2-cffi's defaults, re-hashed on sign-in when those
change). An account is locked for `lock_seconds` after `attempts` failed sign-ins in a row; a
wrong name costs the same hashing time as a wrong password, so names cannot be probed by timing.
A session is a random secret in the browser's cookie; only its SHA-256 is stored, with the
session's own CSRF token and expiry. Changing a password or removing a person ends their sessions.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, joinedload

from flageemonitor.server.core import security
from flageemonitor.server.errors import Conflict, Invalid, NotFound
from flageemonitor.server.models import Person, WebSession, as_utc, utcnow
from flageemonitor.server.services import audit

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()


class LoginRefused(Exception):
    """Wrong name or password, or the account is locked (`locked_until`)."""

    def __init__(self, locked_until: datetime | None = None) -> None:
        super().__init__("locked" if locked_until else "wrong username or password")
        self.locked_until = locked_until


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _check_password(password: str) -> None:
    if not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise Invalid(f"password: use {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def create(s: Session, username: str, password: str, actor: str) -> Person:
    if not USERNAME_RE.match(username):
        raise Invalid(f"username {username!r}: use 1..64 letters, digits, '_', '.', '@', '-' (starting alphanumeric)")
    _check_password(password)
    if s.scalar(select(Person).where(Person.username == username)) is not None:
        raise Conflict(f"person {username!r} already exists (change the password with: admin password {username})")
    person = Person(username=username, password_hash=_HASHER.hash(password), created_at=utcnow(), failed_logins=0)
    s.add(person)
    s.flush()
    audit.record(s, actor, "person.create", f"person:{username}")
    return person


def get(s: Session, username: str) -> Person:
    person = s.scalar(select(Person).where(Person.username == username))
    if person is None:
        raise NotFound(f"unknown person {username!r} (see: flageemonitor-server admin list)")
    return person


def set_password(s: Session, username: str, password: str, actor: str) -> Person:
    """New password; unlocks the account and ends its sessions."""
    _check_password(password)
    person = get(s, username)
    person.password_hash = _HASHER.hash(password)
    person.failed_logins = 0
    person.locked_until = None
    s.execute(delete(WebSession).where(WebSession.person_id == person.id))
    audit.record(s, actor, "person.password", f"person:{username}")
    return person


def remove(s: Session, username: str, actor: str) -> None:
    person = get(s, username)
    s.execute(delete(WebSession).where(WebSession.person_id == person.id))
    s.delete(person)
    audit.record(s, actor, "person.remove", f"person:{username}")


def all_people(s: Session) -> list[Person]:
    return list(s.scalars(select(Person).order_by(Person.username)))


def summary(person: Person) -> dict[str, Any]:
    return {
        "username": person.username,
        "created_at": person.created_at.isoformat(),
        "last_login_at": person.last_login_at.isoformat() if person.last_login_at else None,
        "locked_until": person.locked_until.isoformat() if person.locked_until else None,
    }


def authenticate(s: Session, username: str, password: str, now: datetime, *, attempts: int,
                 lock_seconds: int) -> Person:
    """The person, signed in; LoginRefused otherwise (the caller commits either way)."""
    person = s.scalar(select(Person).where(Person.username == username)) if len(username) <= 64 else None
    if person is None:
        _verify(_dummy_hash(), password)
        raise LoginRefused()
    if person.locked_until is not None and as_utc(person.locked_until) > now:
        raise LoginRefused(as_utc(person.locked_until))
    if not _verify(person.password_hash, password):
        person.failed_logins += 1
        if person.failed_logins >= attempts:
            person.failed_logins = 0
            person.locked_until = now + timedelta(seconds=lock_seconds)
            audit.record(s, f"web:{username}", "person.locked", f"person:{username}",
                         f"{attempts} failed sign-ins; locked until {person.locked_until.isoformat()}")
            raise LoginRefused(person.locked_until)
        raise LoginRefused()
    person.failed_logins = 0
    person.locked_until = None
    person.last_login_at = now
    if _HASHER.check_needs_rehash(person.password_hash):
        person.password_hash = _HASHER.hash(password)
    return person


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False


def open_session(s: Session, person: Person, now: datetime, hours: float) -> tuple[str, WebSession]:
    """A new session for the person; the clear secret (for the cookie) is returned only here."""
    clear = security.new_secret()
    row = WebSession(token_hash=security.hash_token(clear), person_id=person.id, csrf_token=security.new_secret(),
                     created_at=now, expires_at=now + timedelta(hours=hours))
    s.add(row)
    s.flush()
    return clear, row


def session_for(s: Session, clear: str | None, now: datetime) -> WebSession | None:
    """The live session this cookie secret opens, with its person; None if unknown or expired."""
    if not clear or len(clear) > 100:
        return None
    row = s.scalar(select(WebSession).where(WebSession.token_hash == security.hash_token(clear))
                   .options(joinedload(WebSession.person)))
    if row is None or as_utc(row.expires_at) <= now:
        return None
    return row


def close_session(s: Session, clear: str) -> None:
    s.execute(delete(WebSession).where(WebSession.token_hash == security.hash_token(clear)))


def purge_expired_sessions(s: Session, now: datetime) -> int:
    result = s.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
