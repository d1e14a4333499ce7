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
from typing import Any, TypeVar

import anyio
from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from flageemonitor.server.api.errors import TOKEN_HINT, ApiError
from flageemonitor.server.cache import LookupCache, NetworkInfo, TokenInfo
from flageemonitor.server.core import security
from flageemonitor.server.core.config import Settings
from flageemonitor.server.metrics import AUTH_FAILURES
from flageemonitor.server.services import auth_limits, networks, tokens

log = logging.getLogger("flageemonitor.server.auth")
T = TypeVar("T")

# Described in the OpenAPI document (see `openapi_auth`); read by hand in `read_credentials`, because
# FastAPI's per-parameter dependency solving was ~40% of the hot endpoint's cost.
SECURITY_SCHEMES: dict[str, Any] = {
    "BotToken": {"type": "apiKey", "in": "header", "name": "X-Bot-Token", "description": "client token (fmt_...)"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "client token (fmt_...) as a Bearer token"},
}
REDE_MAX = 64
ADDRESS_MAX = 64  # the column's width; a forwarded address is the client's to choose


def openapi_auth(*extra_parameters: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` for a token-protected route: both token headers and `?rede=`."""
    rede = {
        "name": "rede",
        "in": "query",
        "required": False,
        "description": "network code; optional when the token has one",
        "schema": {"type": "string", "maxLength": REDE_MAX},
    }
    return {"security": [{"BotToken": []}, {"Bearer": []}], "parameters": [rede, *extra_parameters]}


@dataclass(frozen=True)
class Credentials:
    address: str
    token: str | None
    rede: str | None


def presented_token(x_bot_token: str | None, authorization: str | None) -> str | None:
    """The token from `X-Bot-Token`, else from `Authorization: Bearer`; blank is none."""
    presented = x_bot_token
    if not presented:
        scheme, _, value = (authorization or "").partition(" ")
        presented = value if scheme.lower() == "bearer" else None
    return presented.strip() if presented and presented.strip() else None


def presented_rede(rede: str | None) -> str | None:
    return rede.strip() if rede and rede.strip() else None


def read_credentials(request: Request) -> Credentials:
    """The token from `X-Bot-Token`, else `Authorization: Bearer`; the network from `?rede=`."""
    headers = request.headers
    return Credentials(
        address=(request.client.host if request.client else "unknown")[:ADDRESS_MAX],
        token=presented_token(headers.get("x-bot-token"), headers.get("authorization")),
        rede=presented_rede(request.query_params.get("rede")),
    )


@dataclass(frozen=True)
class Authorized:
    token_id: int
    client_id: int
    network: NetworkInfo
    generation: int
    expires_at: datetime | None = None  # timezone-aware


def _reject(status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    AUTH_FAILURES.labels(reason).inc()
    log.info("authentication rejected: %s", reason)
    return ApiError(status, reason, message, headers)


def _unknown_token(
    session: Session, settings: Settings, address: str, now: float, failures: auth_limits.Failures
) -> ApiError:
    """401, or 429 while this address has failed `auth_failure_limit` times in the last window
    (a sliding estimate, see `auth_limits`).

    An address already over the limit is not counted further (no write per guess); the answer
    comes after `auth_tarpit_s` (see `run_authorized`), so guesses from one address are slowed.
    """
    window = settings.auth_failure_window
    if failures.limited(settings.auth_failure_limit, now, window):
        retry = failures.retry_after(settings.auth_failure_limit, now, window)
        return _reject(
            429,
            "rate_limited",
            f"too many failed authentications from this address; retry in {retry} s and {TOKEN_HINT}",
            {"Retry-After": str(retry)},
        )
    auth_limits.record_failure(session, address, now, window)
    return _reject(401, "token_rejected", f"token rejected: {TOKEN_HINT}", {"WWW-Authenticate": "Bearer"})


def authorize(
    engine: Engine, session: Session, settings: Settings, cache: LookupCache, creds: Credentials, scope: str
) -> Authorized:
    """A valid token holding `scope`, for the network asked (or implied); else an ApiError.

    The token is checked before the address's failure count: a valid token is never refused for
    failures someone else caused from the same address (a shared NAT, a reverse proxy). Only
    unknown or malformed tokens count as failures and meet the limit.

    The per-request state is read on a plain connection; the session (lazy: it connects on first
    use) is only touched on a cache miss or a write.
    """
    now = time.time()
    window = settings.auth_failure_window
    with engine.connect() as conn:
        failures, generation = auth_limits.request_state(conn, creds.address, now, window)
    cache.sync(generation)
    if not creds.token:
        raise _reject(
            401,
            "token_missing",
            "token missing: send 'X-Bot-Token: <token>' or 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not security.well_formed(creds.token):
        raise _unknown_token(session, settings, creds.address, now, failures)
    digest = security.hash_token(creds.token)
    info = cache.get("token", digest)
    if not isinstance(info, TokenInfo):
        row = tokens.by_hash(session, digest)
        if row is None:
            raise _unknown_token(session, settings, creds.address, now, failures)
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
        tokens.touch(session, info.id, moment)
    return Authorized(token_id=info.id, client_id=info.client_id, network=network, generation=generation,
                      expires_at=expires)


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
            candidates = [NetworkInfo.of(n) for n in networks.of_client(session, info.client_id)]
            cache.put(generation, "client_networks", info.client_id, tuple(candidates))
    if rede is not None:
        for net in candidates if len(rede) <= REDE_MAX else ():
            if net.code == rede:
                return net
        raise _reject(403, "network_denied", f"token is not valid for network {rede!r}: {TOKEN_HINT}")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _reject(403, "network_denied", f"token's client has no network yet; {TOKEN_HINT}")
    codes = ", ".join(sorted(n.code for n in candidates))
    raise ApiError(400, "network_required", f"token covers several networks ({codes}): pass ?rede=CODE")


async def run_authorized(request: Request, scope: str, work: Callable[[Session, Authorized], T]) -> T:
    """Authorize and do the request's database work in one worker-thread call."""
    state = request.app.state
    creds = read_credentials(request)

    def call() -> T:
        with state.sessionmaker() as session:
            auth = authorize(state.engine, session, state.settings, state.cache, creds, scope)
            return work(session, auth)

    try:
        return await run_db(request, call)
    except ApiError as exc:
        if exc.status == 429 and state.settings.auth_tarpit_s:
            await anyio.sleep(state.settings.auth_tarpit_s)
        raise


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
