"""Tokens: `fmt_` (client) or `fma_` (admin API) + 43 urlsafe characters (32 random bytes),
stored as SHA-256.

The prefix makes a leaked token recognisable (secret scanners, log redaction) and keeps the two
kinds apart: a client token never opens `/api/admin/`, an admin token never fetches a config.
Only the hash is kept, so a database dump does not hand out working tokens. Web sessions use
the same random secrets and hashing (`new_secret`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "fmt_"  # noqa: S105
ADMIN_TOKEN_PREFIX = "fma_"  # noqa: S105
_SECRET_BYTES = 32
TOKEN_RE = re.compile(r"^fmt_[A-Za-z0-9_-]{43}$")
ADMIN_TOKEN_RE = re.compile(r"^fma_[A-Za-z0-9_-]{43}$")

SCOPES = ("config:read", "bootstrap:read", "report:write", "admin")
DEFAULT_SCOPES = ("config:read", "bootstrap:read", "report:write")
SCOPE_ALIASES = {"reports:write": "report:write"}  # the spelling of the first releases


def new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def generate_token() -> str:
    return TOKEN_PREFIX + new_secret()


def generate_admin_token() -> str:
    return ADMIN_TOKEN_PREFIX + new_secret()


def well_formed(token: str) -> bool:
    return bool(TOKEN_RE.match(token))


def well_formed_admin(token: str) -> bool:
    return bool(ADMIN_TOKEN_RE.match(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hashes_match(stored: str, presented_hash: str) -> bool:
    return hmac.compare_digest(stored.encode("ascii"), presented_hash.encode("ascii"))


def display_prefix(token: str) -> str:
    """The first characters, enough to tell tokens apart in listings, useless to an attacker."""
    return token[: len(TOKEN_PREFIX) + 6]
