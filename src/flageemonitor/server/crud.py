"""Repository: every read and write of the control plane's state goes through here."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from flageemonitor.core.config_model import validate_config
from flageemonitor.server.core import security
from flageemonitor.server.errors import Conflict, Invalid, NotFound
from flageemonitor.server.models import (
    AuditEntry,
    AuthFailure,
    Client,
    ConfigVersion,
    Network,
    ServerState,
    Token,
    TokenNetwork,
    utcnow,
)

NETWORK_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RUNTIME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


# --- audit


def audit(s: Session, actor: str, action: str, target: str, detail: str | None = None) -> None:
    s.add(AuditEntry(actor=actor, action=action, target=target, detail=detail, at=utcnow()))


def list_audit(s: Session, limit: int = 50, target: str | None = None) -> list[AuditEntry]:
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target:
        q = q.where(AuditEntry.target == target)
    return list(s.scalars(q))


# --- the change generation (see models.ServerState)


def bump_generation(s: Session) -> None:
    stmt = update(ServerState).where(ServerState.id == 1).values(generation=ServerState.generation + 1)
    if s.execute(stmt).rowcount == 0:  # type: ignore[attr-defined]
        s.add(ServerState(id=1, generation=1))
        s.flush()


_REQUEST_STATE = text(
    "SELECT (SELECT count FROM auth_failures WHERE address = :address AND bucket = :bucket),"
    " (SELECT generation FROM server_state WHERE id = 1)"
)


def request_state(db: Connection | Session, address: str, now: float, window: int) -> tuple[int, int]:
    """(failed authentications of `address` in this window, change generation) in one round trip.

    Plain SQL on a plain connection: this runs on every request, the ORM adds nothing here.
    """
    conn = db.connection() if isinstance(db, Session) else db
    row = conn.execute(_REQUEST_STATE, {"address": address, "bucket": _bucket(now, window)}).one()
    return int(row[0] or 0), int(row[1] or 0)


# --- clients and networks


def _no_nul(field: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise Invalid(f"{field}: must not contain a NUL character")


def add_client(s: Session, name: str, actor: str) -> Client:
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 for c in name):
        raise Invalid("client name: must be 1..200 printable characters")
    if s.scalar(select(Client).where(Client.name == name)) is not None:
        raise Conflict(f"client {name!r} already exists")
    client = Client(name=name, created_at=utcnow())
    s.add(client)
    s.flush()
    audit(s, actor, "client.add", f"client:{name}")
    return client


def get_client(s: Session, name: str) -> Client:
    client = s.scalar(select(Client).where(Client.name == name))
    if client is None:
        raise NotFound(f"unknown client {name!r} (create it with: flageemonitor-server client add NAME)")
    return client


def list_clients(s: Session) -> list[Client]:
    return list(s.scalars(select(Client).order_by(Client.name)))


def add_network(
    s: Session,
    client_name: str,
    code: str,
    actor: str,
    *,
    provider: str | None = None,
    timezone: str | None = None,
    image: str | None = None,
    runtime_name: str | None = None,
    container_root: str | None = None,
) -> Network:
    client = get_client(s, client_name)
    if not NETWORK_CODE_RE.match(code):
        raise Invalid(f"network code {code!r}: use 1..64 letters, digits, '_', '.', '-' (starting alphanumeric)")
    if s.scalar(select(Network).where(Network.code == code)) is not None:
        raise Conflict(f"network {code!r} already exists")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid(f"time zone {timezone!r}: unknown (expected an IANA name like America/Sao_Paulo)") from None
    if runtime_name is not None and not RUNTIME_NAME_RE.match(runtime_name):
        raise Invalid(f"runtime name {runtime_name!r}: use letters, digits, '_', '.', '-'")
    for field, value in (("image", image), ("container root", container_root), ("provider", provider)):
        _no_nul(field, value)
    net = Network(
        client_id=client.id,
        code=code,
        provider=provider.strip().lower() if provider else None,
        timezone=timezone,
        image=image,
        runtime_name=runtime_name,
        container_root=container_root,
        created_at=utcnow(),
    )
    s.add(net)
    s.flush()
    audit(s, actor, "network.add", f"network:{code}", f"client={client.name}")
    bump_generation(s)
    return net


def get_network(s: Session, code: str) -> Network:
    net = s.scalar(select(Network).where(Network.code == code))
    if net is None:
        raise NotFound(
            f"unknown network {code!r} (create it with: flageemonitor-server network add --client NAME {code})"
        )
    return net


def client_networks(s: Session, client_id: int) -> list[Network]:
    return list(s.scalars(select(Network).where(Network.client_id == client_id).order_by(Network.code)))


def list_networks(s: Session, client_name: str | None = None) -> list[Network]:
    q = select(Network).order_by(Network.code)
    if client_name:
        q = q.where(Network.client_id == get_client(s, client_name).id)
    return list(s.scalars(q))


# --- tokens


def issue_token(
    s: Session,
    client_name: str,
    actor: str,
    *,
    networks: list[str] | None = None,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, Token]:
    """Create a token; the clear text is returned once and never stored."""
    client = get_client(s, client_name)
    chosen = list(dict.fromkeys(scopes or security.DEFAULT_SCOPES))
    for scope in chosen:
        if scope not in security.SCOPES:
            raise Invalid(f"unknown scope {scope!r}; known scopes: {', '.join(security.SCOPES)}")
    nets: list[Network] = []
    for code in networks or []:
        net = get_network(s, code)
        if net.client_id != client.id:
            raise Invalid(f"network {code!r} belongs to another client, not {client.name!r}")
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
    bump_generation(s)
    audit(
        s,
        actor,
        "token.issue",
        f"token:{token.id}",
        f"client={client.name} networks={','.join(n.code for n in nets) or '*'} scopes={token.scopes}",
    )
    return clear, token


def revoke_token(s: Session, token_id: int, actor: str) -> Token:
    token = s.get(Token, token_id)
    if token is None:
        raise NotFound(f"unknown token id {token_id} (see: flageemonitor-server token list --client NAME)")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit(s, actor, "token.revoke", f"token:{token_id}")
    bump_generation(s)
    return token


def list_tokens(s: Session, client_name: str) -> list[Token]:
    client = get_client(s, client_name)
    q = select(Token).where(Token.client_id == client.id).options(selectinload(Token.networks)).order_by(Token.id)
    return list(s.scalars(q))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def token_summary(token: Token) -> dict[str, Any]:
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


def find_token_by_hash(s: Session, digest: str) -> Token | None:
    token = s.scalar(
        select(Token).where(Token.token_hash == digest).options(selectinload(Token.networks))
    )
    if token is None or not security.hashes_match(token.token_hash, digest):
        return None
    return token


def touch_token(s: Session, token_id: int, now: datetime) -> None:
    """Record the last use (callers do it at most once a minute per token, so reads stay reads)."""
    s.execute(update(Token).where(Token.id == token_id).values(last_used_at=now))
    s.commit()


# --- configs


def render_body(code: str, version: int, data: dict[str, Any]) -> str:
    content = dict(data)
    content["PARAM_REDE"] = code
    content["CONFIG_VERSION"] = version
    validate_config(content)  # raises ConfigInvalid naming the field
    return json.dumps(content, ensure_ascii=False, indent=2) + "\n"


def etag_for(body: str) -> str:
    return '"' + hashlib.sha256(body.encode("utf-8")).hexdigest()[:40] + '"'


def set_config(s: Session, code: str, data: Any, actor: str, comment: str | None = None) -> ConfigVersion:
    net = get_network(s, code)
    if not isinstance(data, dict):
        from flageemonitor.core.errors import ConfigInvalid

        raise ConfigInvalid(f"config must be a JSON object, got {type(data).__name__}")
    current = s.scalar(select(func.max(ConfigVersion.version)).where(ConfigVersion.network_id == net.id)) or 0
    version = current + 1
    body = render_body(code, version, data)
    row = ConfigVersion(
        network_id=net.id,
        version=version,
        body=body,
        etag=etag_for(body),
        created_at=utcnow(),
        created_by=actor,
        comment=comment,
    )
    s.add(row)
    s.flush()
    audit(s, actor, "config.set", f"network:{code}", f"version={version}" + (f" comment={comment}" if comment else ""))
    bump_generation(s)
    return row


def latest_config(s: Session, network_id: int) -> ConfigVersion | None:
    return s.scalar(
        select(ConfigVersion)
        .where(ConfigVersion.network_id == network_id)
        .order_by(ConfigVersion.version.desc())
        .limit(1)
    )


def get_config(s: Session, code: str, version: int | None = None) -> ConfigVersion:
    net = get_network(s, code)
    if version is None:
        row = latest_config(s, net.id)
        if row is None:
            raise NotFound(
                f"network {code!r} has no config yet (flageemonitor-server config set --network {code} FILE)"
            )
        return row
    row = s.scalar(
        select(ConfigVersion).where(ConfigVersion.network_id == net.id, ConfigVersion.version == version)
    )
    if row is None:
        raise NotFound(f"network {code!r} has no config version {version} (see: config history --network {code})")
    return row


def config_history(s: Session, code: str) -> list[ConfigVersion]:
    net = get_network(s, code)
    q = select(ConfigVersion).where(ConfigVersion.network_id == net.id).order_by(ConfigVersion.version)
    return list(s.scalars(q))


def config_diff(s: Session, code: str, old: int | None = None, new: int | None = None) -> str:
    """Unified diff between two versions (default: the previous one and the latest)."""
    newer = get_config(s, code, new)
    old_version = old if old is not None else newer.version - 1
    if old_version < 1:
        older_body, old_label = "", "(none)"
    else:
        older = get_config(s, code, old_version)
        older_body, old_label = older.body, f"{code} v{older.version}"
    lines = difflib.unified_diff(
        _comparable(older_body).splitlines(keepends=True),
        _comparable(newer.body).splitlines(keepends=True),
        fromfile=old_label,
        tofile=f"{code} v{newer.version}",
    )
    return "".join(lines)


def _comparable(body: str) -> str:
    """Sorted keys, CONFIG_VERSION left out: the diff shows what changed, not the counter."""
    if not body:
        return ""
    data = json.loads(body)
    data.pop("CONFIG_VERSION", None)
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def rollback_config(s: Session, code: str, to: int, actor: str) -> ConfigVersion:
    """A new version whose content is version `to`'s: history is never rewritten."""
    target = get_config(s, code, to)
    data = json.loads(target.body)
    row = set_config(s, code, data, actor, comment=f"rollback to v{to}")
    audit(s, actor, "config.rollback", f"network:{code}", f"to={to} new_version={row.version}")
    return row


# --- failed-authentication rate limit (shared by every worker through the database)


def _bucket(now: float, window: int) -> int:
    return int(now // window)


def auth_failures(s: Session, address: str, now: float, window: int) -> int:
    count = s.scalar(
        select(AuthFailure.count).where(AuthFailure.address == address, AuthFailure.bucket == _bucket(now, window))
    )
    return int(count or 0)


def record_auth_failure(s: Session, address: str, now: float, window: int) -> None:
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
