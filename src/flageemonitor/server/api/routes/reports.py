"""`POST /api/ingest/bot/checkin` and `/bot/runs`: what proxies tell the server (contract v1).

The body is read within bounds (1 MiB on the wire, gzip accepted), authorized (`report:write`,
the token's network) and validated in one worker-thread call, then handed to the worker's
batch writer; the answer is sent once the transaction that holds it has committed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from flageemonitor.core.fleet_contract import (
    MAX_BODY_BYTES,
    MAX_DECODED_BYTES,
    CheckIn,
    CheckInAnswer,
    RunReportBody,
    RunStored,
)
from flageemonitor.server.api import body
from flageemonitor.server.api.deps import Authorized, authorize, openapi_auth, read_credentials, run_db
from flageemonitor.server.api.errors import AUTH_RESPONSES, ApiError, ErrorBody
from flageemonitor.server.api.ingest_fast_path import IngestFastPath
from flageemonitor.server.api.openapi import json_body
from flageemonitor.server.cache import LookupCache
from flageemonitor.server.ingest_writer import BatchWriter, StoreFailed
from flageemonitor.server.services import configs
from flageemonitor.server.services.fleet_ingest import Received, looks_secret

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
SCOPE = "report:write"

BODY_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    400: {"model": ErrorBody, "description": "not JSON, broken gzip, or ?rede= needed (the token covers several)"},
    413: {"model": ErrorBody, "description": "body over 1 MiB (or over 8 MiB once decompressed)"},
    415: {"model": ErrorBody, "description": "a Content-Encoding other than gzip"},
    422: {"model": ErrorBody, "description": "a field is missing, malformed or out of bounds (named)"},
    503: {"model": ErrorBody, "description": "the database refused the write; send again later"},
}


def writer_of(state: Any) -> BatchWriter:
    """The worker's batch writer (made on first use), kept in the app's `state`."""
    writer: BatchWriter | None = getattr(state, "writer", None)
    if writer is None:
        writer = state.writer = BatchWriter(state.engine)
    return writer


async def _receive(request: Request, model: type[BaseModel], extra: Any = None) -> tuple[Authorized, Received, Any]:
    """Authorize and validate in one worker-thread call; `extra(session, auth)` runs there too.

    A valid body's authorization (with `extra`'s value, the heartbeat interval of a check-in) is
    remembered for the fast path (see `api.ingest_fast_path`).
    """
    raw = await body.read_limited(request, MAX_BODY_BYTES)
    state = request.app.state
    creds = read_credentials(request)
    encoding = request.headers.get("content-encoding")

    def work() -> tuple[Authorized, Received, Any]:
        with state.sessionmaker() as session:
            auth = authorize(state.engine, session, state.settings, state.cache, creds, SCOPE)
            decoded = body.decode(raw, encoding, MAX_DECODED_BYTES)
            parsed = body.parse(model, decoded)
            received = Received(auth.network.id, parsed, datetime.now(UTC), looks_secret(decoded), decoded)
            return auth, received, extra(session, auth) if extra else None

    auth, received, value = await run_db(request, work)
    fast: IngestFastPath | None = getattr(state, "ingest", None)
    if fast is not None:
        fast.remember(creds, auth, value)
    return auth, received, value


async def _store(request: Request, received: Received) -> Any:
    try:
        return await asyncio.wrap_future(writer_of(request.app.state).submit(received))
    except StoreFailed as exc:
        raise ApiError(503, "store_failed", str(exc), {"Retry-After": "30"}) from None


def _interval(cache: LookupCache, session: Session, auth: Authorized) -> int:
    cached = cache.get("heartbeat", auth.network.id)
    if isinstance(cached, int):
        return cached
    value = configs.heartbeat_interval(configs.latest(session, auth.network.id))
    cache.put(auth.generation, "heartbeat", auth.network.id, value)
    return value


@router.post(
    "/bot/checkin",
    response_model=CheckInAnswer,
    responses=BODY_RESPONSES,
    openapi_extra={**openapi_auth(), **json_body(CheckIn, "the proxy's state, sent on every heartbeat")},
)
async def checkin(request: Request) -> JSONResponse:
    cache: LookupCache = request.app.state.cache
    _auth, received, interval = await _receive(request, CheckIn, lambda s, a: _interval(cache, s, a))
    await _store(request, received)
    answer = CheckInAnswer(server_time=datetime.now(UTC), heartbeat_interval_s=interval)
    return JSONResponse(answer.model_dump(mode="json"))


@router.post(
    "/bot/runs",
    status_code=201,
    response_model=RunStored,
    responses={**BODY_RESPONSES, 200: {"model": RunStored, "description": "already stored (a retried send)"}},
    openapi_extra={**openapi_auth(), **json_body(RunReportBody, "one run's report; run_id makes a resend a no-op")},
)
async def run_report(request: Request) -> JSONResponse:
    _auth, received, _ = await _receive(request, RunReportBody)
    run_id = received.body.run_id
    if await _store(request, received):
        return JSONResponse({"run_id": run_id, "duplicate": True}, status_code=200)
    return JSONResponse({"run_id": run_id}, status_code=201)
