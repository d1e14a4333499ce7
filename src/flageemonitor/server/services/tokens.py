"""Client tokens: issued once in clear, stored as SHA-256, scoped to networks and scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from flageemonitor.server.core import security
from flageemonitor.server.errors import Invalid, NotFound
from flageemonitor.server.models import Network, Token, TokenNetwork, utcnow
from flageemonitor.server.services import audit, clients, generation
from flageemonitor.server.services import networks as network_service


def issue(
    s: Session,
    client_name: str,
    actor: str,
    *,
    networks: list[str] | None = None,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, Token]:
    """Create a token; the clear text is returned once and never stored.

    A network named twice is bound once.
    """
    client = clients.get(s, client_name)
    chosen = list(dict.fromkeys(security.SCOPE_ALIASES.get(x, x) for x in scopes or security.DEFAULT_SCOPES))
    for scope in chosen:
        if scope not in security.SCOPES:
            raise Invalid(f"unknown scope {scope!r}; known scopes: {', '.join(security.SCOPES)}")
    nets: list[Network] = []
    for code in networks or []:
        net = network_service.get(s, code)
        if net.client_id != client.id:
            raise Invalid(f"network {code!r} belongs to another client, not {client.name!r}")
        if all(n.id != net.id for n in nets):
            nets.append(net)
    clear = security.generate_token()
    token = Token(
        client_id=client.id,
        token_hash=security.hash_token(clear),
        prefix=security.display_prefix(clear),
        scopes=" ".join(chosen),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    s.add(token)
    s.flush()
    for net in nets:
        s.add(TokenNetwork(token_id=token.id, network_id=net.id))
    s.flush()
    s.refresh(token)
    generation.bump(s)
    audit.record(
        s,
        actor,
        "token.issue",
        f"token:{token.id}",
        f"client={client.name} networks={','.join(n.code for n in nets) or '*'} scopes={token.scopes}",
    )
    return clear, token


def revoke(s: Session, token_id: int, actor: str) -> Token:
    token = s.get(Token, token_id)
    if token is None:
        raise NotFound(f"unknown token id {token_id} (see: flageemonitor-server token list --client NAME)")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(s, actor, "token.revoke", f"token:{token_id}")
    generation.bump(s)
    return token


def of_client(s: Session, client_name: str) -> list[Token]:
    client = clients.get(s, client_name)
    q = select(Token).where(Token.client_id == client.id).options(selectinload(Token.networks)).order_by(Token.id)
    return list(s.scalars(q))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def summary(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "prefix": token.prefix,
        "networks": [n.code for n in token.networks],
        "scopes": token.scope_list,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "revoked": token.revoked_at is not None,
        "last_used_at": _iso(token.last_used_at),
    }


def by_hash(s: Session, digest: str) -> Token | None:
    token = s.scalar(select(Token).where(Token.token_hash == digest).options(selectinload(Token.networks)))
    if token is None or not security.hashes_match(token.token_hash, digest):
        return None
    return token


def touch(s: Session, token_id: int, now: datetime) -> None:
    """Record the last use (callers do it at most once a minute per token, so reads stay reads)."""
    s.execute(update(Token).where(Token.id == token_id).values(last_used_at=now))
    s.commit()
