"""Admin API calls: an admin token (`Authorization: Bearer fma_...`), then one service call.

Client tokens and web sessions never pass. Failed attempts count against the caller's address
like any other failed authentication (429 past the limit). Service errors become JSON errors:
unknown name 404, taken name 409, a refused value 400 (its message names the field).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from flageemonitor.core.errors import FlageeError
from flageemonitor.server.api.deps import run_db
from flageemonitor.server.api.errors import ApiError, ErrorBody
from flageemonitor.server.core.config import Settings
from flageemonitor.server.errors import Conflict, NotFound
from flageemonitor.server.metrics import AUTH_FAILURES
from flageemonitor.server.services import admin_tokens, auth_limits

T = TypeVar("T")
ADMIN_SCHEME: dict[str, Any] = {
    "AdminBearer": {"type": "http", "scheme": "bearer", "description": "admin API token (fma_...)"},
}
HINT = "the admin API needs 'Authorization: Bearer fma_…' (flageemonitor-server admin token issue --name NAME)"
ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a value was refused (the message names it)"},
    401: {"model": ErrorBody, "description": "no admin token, or not a valid one"},
    403: {"model": ErrorBody, "description": "admin token revoked or expired"},
    404: {"model": ErrorBody, "description": "no such client, network, token or version"},
    409: {"model": ErrorBody, "description": "the name is already taken"},
    429: {"model": ErrorBody, "description": "too many failed authentications from this address"},
}


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _refuse(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    AUTH_FAILURES.labels(error).inc()
    return ApiError(status, error, message, headers)


def admin_call(request: Request, work: Callable[[Session, str], T]) -> Any:
    """Authorize, run `work(session, actor)` and commit, in one worker-thread call."""
    state = request.app.state
    settings: Settings = state.settings
    token = _bearer(request)
    address = request.client.host if request.client else "unknown"

    def call() -> T:
        clock = time.time()
        with state.sessionmaker() as s:
            failed = auth_limits.failures(s, address, clock, settings.auth_failure_window)
            if failed.limited(settings.auth_failure_limit, clock, settings.auth_failure_window):
                retry = failed.retry_after(settings.auth_failure_limit, clock, settings.auth_failure_window)
                raise _refuse(429, "rate_limited", f"too many failed authentications; retry in {retry} s",
                              {"Retry-After": str(retry)})
            if token is None:
                raise _refuse(401, "token_missing", HINT, {"WWW-Authenticate": "Bearer"})
            row, reason = admin_tokens.check(s, token, datetime.now(UTC))
            if row is None:
                auth_limits.record_failure(s, address, clock, settings.auth_failure_window)
                raise _refuse(401, "token_rejected", f"token rejected: {HINT}", {"WWW-Authenticate": "Bearer"})
            if reason:
                raise _refuse(403, f"token_{reason}", f"admin token {reason}: issue a new one")
            try:
                result = work(s, f"api:{row.name}")
            except NotFound as exc:
                raise ApiError(404, "not_found", str(exc)) from None
            except Conflict as exc:
                raise ApiError(409, "conflict", str(exc)) from None
            except FlageeError as exc:
                raise ApiError(400, "invalid", str(exc)) from None
            s.commit()
            return result

    return run_db(request, call)
