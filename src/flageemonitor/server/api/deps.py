"""Request dependencies: the presented credentials, and the authorization run on them.

The credentials are parsed on the event loop (no I/O); the database work of a request (rate
limit, token, network, payload) runs in one worker-thread call with one session. Lookups are
cached per worker under the database's change generation (see `server.cache`), which each
request re-reads: a revocation is seen by every worker on its next request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from flageemonitor.server import crud
from flageemonitor.server.api.errors import TOKEN_HINT, ApiError
from flageemonitor.server.cache import LookupCache, NetworkInfo, TokenInfo
from flageemonitor.server.core import security
from flageemonitor.server.core.config import Settings
from flageemonitor.server.metrics import AUTH_FAILURES

log = logging.getLogger("flageemonitor.server.auth")
T = TypeVar("T")

bot_token_header = APIKeyHeader(name="X-Bot-Token", auto_error=False, description="client token (fmt_...)")
bearer = HTTPBearer(auto_error=False, description="client token (fmt_...) as a Bearer token")


@dataclass(frozen=True)
class Credentials:
    address: str
    token: str | None
    rede: str | None


async def credentials(
    request: Request,
    x_bot_token: Annotated[str | None, Security(bot_token_header)] = None,
    authorization: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    rede: Annotated[
        str | None, Query(max_length=64, description="network code; optional when the token has one")
    ] = None,
) -> Credentials:
    presented = x_bot_token or (authorization.credentials if authorization else None)
    return Credentials(
        address=request.client.host if request.client else "unknown",
        token=presented.strip() if presented else None,
        rede=rede.strip() if rede and rede.strip() else None,
    )


CredentialsDep = Annotated[Credentials, Depends(credentials)]


@dataclass(frozen=True)
class Authorized:
    token_id: int
    client_id: int
    network: NetworkInfo
    generation: int


def _reject(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    AUTH_FAILURES.labels(reason).inc()
    log.info("authentication rejected: %s", reason)
    return ApiError(status, reason, message, headers)


def _unknown_token(session: Session, settings: Settings, address: str, now: float) -> ApiError:
    crud.record_auth_failure(session, address, now, settings.auth_failure_window)
    return _reject(401, "token_rejected", f"token rejected: {TOKEN_HINT}", {"WWW-Authenticate": "Bearer"})


def authorize(session: Session, settings: Settings, cache: LookupCache, creds: Credentials, scope: str) -> Authorized:
    """A valid token holding `scope`, for the network asked (or implied); else an ApiError."""
    now = time.time()
    window = settings.auth_failure_window
    failures, generation = crud.request_state(session, creds.address, now, window)
    cache.sync(generation)
    if failures >= settings.auth_failure_limit:
        retry = crud.retry_after(now, window)
        raise _reject(
            429,
            "rate_limited",
            f"too many failed authentications from this address; retry in {retry} s and {TOKEN_HINT}",
            {"Retry-After": str(retry)},
        )
    if not creds.token:
        raise _reject(
            401,
            "token_missing",
            "token missing: send 'X-Bot-Token: <token>' or 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not security.well_formed(creds.token):
        raise _unknown_token(session, settings, creds.address, now)
    digest = security.hash_token(creds.token)
    info = cache.get("token", digest)
    if not isinstance(info, TokenInfo):
        row = crud.find_token_by_hash(session, digest)
        if row is None:
            raise _unknown_token(session, settings, creds.address, now)
        info = TokenInfo.of(row)
        cache.put(generation, "token", digest, info)
    moment = datetime.now(UTC)
    if info.revoked:
        raise _reject(403, "token_revoked", f"token revoked: ask for a new token; {TOKEN_HINT}")
    expires = info.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if expires is not None and expires <= moment:
        raise _reject(403, "token_expired", f"token expired at {expires.isoformat()}: ask for a new token")
    if scope not in info.scopes and "admin" not in info.scopes:
        raise _reject(403, "scope_denied", f"token lacks the scope {scope!r} needed here; {TOKEN_HINT}")
    network = _network_for(session, cache, generation, info, creds.rede)
    if cache.due_for_touch(info.id):
        crud.touch_token(session, info.id, moment)
    return Authorized(token_id=info.id, client_id=info.client_id, network=network, generation=generation)


def _network_for(
    session: Session, cache: LookupCache, generation: int, info: TokenInfo, rede: str | None
) -> NetworkInfo:
    if info.networks:
        candidates = list(info.networks)
    else:
        cached = cache.get("client_networks", info.client_id)
        if isinstance(cached, tuple):
            candidates = list(cached)
        else:
            candidates = [NetworkInfo.of(n) for n in crud.client_networks(session, info.client_id)]
            cache.put(generation, "client_networks", info.client_id, tuple(candidates))
    if rede is not None:
        for net in candidates:
            if net.code == rede:
                return net
        raise _reject(403, "network_denied", f"token is not valid for network {rede!r}: {TOKEN_HINT}")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _reject(403, "network_denied", f"token's client has no network yet; {TOKEN_HINT}")
    codes = ", ".join(sorted(n.code for n in candidates))
    raise ApiError(400, "network_required", f"token covers several networks ({codes}): pass ?rede=CODE")


async def run_authorized(
    request: Request, creds: Credentials, scope: str, work: Callable[[Session, Authorized], T]
) -> T:
    """Authorize and do the request's database work in one worker-thread call."""
    state = request.app.state

    def call() -> T:
        with state.sessionmaker() as session:
            auth = authorize(session, state.settings, state.cache, creds, scope)
            return work(session, auth)

    return await run_db(request, call)


async def run_db(request: Request, fn: Callable[[], T]) -> T:
    """Run blocking database work on the worker's small, dedicated thread pool.

    Few threads on purpose: request work is short, and many runnable threads only fight over
    the GIL, which shows up as tail latency.
    """
    state = request.app.state
    limiter = getattr(state, "db_limiter", None)
    if limiter is None:
        limiter = state.db_limiter = anyio.CapacityLimiter(state.settings.db_threads)
    return await anyio.to_thread.run_sync(fn, limiter=limiter)
