"""Request dependencies: the database session and the authenticated token."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from flageemonitor.server import crud
from flageemonitor.server.api.errors import TOKEN_HINT, ApiError
from flageemonitor.server.core.config import Settings
from flageemonitor.server.metrics import AUTH_FAILURES
from flageemonitor.server.models import Network

log = logging.getLogger("flageemonitor.server.auth")

bot_token_header = APIKeyHeader(name="X-Bot-Token", auto_error=False, description="client token (fmt_...)")
bearer = HTTPBearer(auto_error=False, description="client token (fmt_...) as a Bearer token")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Authorized:
    token_id: int
    client_id: int
    network: Network


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _reject(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    AUTH_FAILURES.labels(reason).inc()
    log.info("authentication rejected: %s", reason)
    return ApiError(status, reason, message, headers)


def require(scope: str) -> Callable[..., Authorized]:
    """Dependency factory: a valid token holding `scope`, for the network asked (or implied)."""

    def dependency(
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        x_bot_token: Annotated[str | None, Security(bot_token_header)] = None,
        authorization: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
        rede: Annotated[
            str | None, Query(max_length=64, description="network code; optional when the token has one")
        ] = None,
    ) -> Authorized:
        address = _client_address(request)
        now = time.time()
        window = settings.auth_failure_window
        if crud.auth_failures(session, address, now, window) >= settings.auth_failure_limit:
            retry = crud.retry_after(now, window)
            raise _reject(
                429,
                "rate_limited",
                f"too many failed authentications from this address; retry in {retry} s and {TOKEN_HINT}",
                {"Retry-After": str(retry)},
            )
        presented = x_bot_token or (authorization.credentials if authorization else None)
        if not presented:
            raise _reject(
                401,
                "token_missing",
                "token missing: send 'X-Bot-Token: <token>' or 'Authorization: Bearer <token>'",
                {"WWW-Authenticate": "Bearer"},
            )
        token = crud.find_token(session, presented.strip())
        if token is None:
            crud.record_auth_failure(session, address, now, window)
            raise _reject(401, "token_rejected", f"token rejected: {TOKEN_HINT}", {"WWW-Authenticate": "Bearer"})
        moment = datetime.now(UTC)
        if token.revoked_at is not None:
            raise _reject(403, "token_revoked", f"token revoked: ask for a new token; {TOKEN_HINT}")
        expires = token.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if expires is not None and expires <= moment:
            raise _reject(403, "token_expired", f"token expired at {expires.isoformat()}: ask for a new token")
        if scope not in token.scope_list and "admin" not in token.scope_list:
            raise _reject(403, "scope_denied", f"token lacks the scope {scope!r} needed here; {TOKEN_HINT}")
        network = _network_for(session, token.client_id, [n.id for n in token.networks], rede)
        crud.touch_token(session, token, moment)
        return Authorized(token_id=token.id, client_id=token.client_id, network=network)

    return dependency


def _network_for(session: Session, client_id: int, allowed_ids: list[int], rede: str | None) -> Network:
    if rede is not None and rede.strip():
        code = rede.strip()
        net = session.scalar(select(Network).where(Network.code == code))
        if net is None or net.client_id != client_id or (allowed_ids and net.id not in allowed_ids):
            raise _reject(403, "network_denied", f"token is not valid for network {code!r}: {TOKEN_HINT}")
        return net
    if allowed_ids:
        candidates = list(session.scalars(select(Network).where(Network.id.in_(allowed_ids))))
    else:
        candidates = list(session.scalars(select(Network).where(Network.client_id == client_id)))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _reject(403, "network_denied", f"token's client has no network yet; {TOKEN_HINT}")
    codes = ", ".join(sorted(n.code for n in candidates))
    raise ApiError(400, "network_required", f"token covers several networks ({codes}): pass ?rede=CODE")
