"""Check-ins and run reports taken before the framework: `POST /api/ingest/bot/runs` and `/bot/checkin`.

The full routes (`routes/reports.py`) remember, per worker, each token they authorized for
`report:write`: under the key the request presented — (the token's SHA-256, `?rede=` as given) —
the token id, its expiry, the network and the change generation the authorization was read at
(and, for check-ins, the network's heartbeat interval read under that generation). A later
request with the same key is stored and answered by `ControlPlaneApp` before any middleware or
routing, only while all of this holds:

- the request is plain: a JSON content type, no Content-Encoding or gzip, a Content-Length
  within `MAX_BODY_BYTES`, no query but `?rede=`;
- the token has not expired (checked against the clock on every request) and its last-use time
  is not due to be recorded (once a minute per worker: that request takes the full path);
- the body decodes within `MAX_DECODED_BYTES` and validates against the contract model;
- the change generation is still the remembered one in the transaction that stores the body:
  the batch writer reads it there (see `server.ingest_writer`), so a token revoked, a scope or a
  network changed, a config stored — any commit that moves the generation — before that
  transaction began is never taken on trust. Nothing is written for such a body.

Everything else — an unknown, malformed or missing token, a body out of bounds or invalid, a
moved generation, a failed write — goes to the full path with the body already read handed on
unchanged, so status codes, error bodies, the failure budget and token bookkeeping stay the
routes' own. The answers are the routes' own `JSONResponse`s.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from flageemonitor.core.fleet_contract import MAX_BODY_BYTES, MAX_DECODED_BYTES, CheckIn, CheckInAnswer, RunReportBody
from flageemonitor.server.api import body
from flageemonitor.server.api.deps import Authorized, Credentials, presented_rede, presented_token
from flageemonitor.server.api.errors import ApiError
from flageemonitor.server.api.raw_request import first_headers, rede_only
from flageemonitor.server.cache import LookupCache
from flageemonitor.server.core import security
from flageemonitor.server.ingest_writer import STALE, BatchWriter, StoreFailed
from flageemonitor.server.metrics import FAST_INGEST, LATENCY, REQUESTS
from flageemonitor.server.services.fleet_ingest import Received, looks_secret

CHECKIN_PATH = "/api/ingest/bot/checkin"
RUNS_PATH = "/api/ingest/bot/runs"
MODELS: dict[str, type[BaseModel]] = {CHECKIN_PATH: CheckIn, RUNS_PATH: RunReportBody}
MAX_ENTRIES = 20_000
_HEADERS = (b"x-bot-token", b"authorization", b"content-type", b"content-encoding", b"content-length")
Key = tuple[bytes, str | None]


@dataclass(frozen=True)
class Entry:
    generation: int
    token_id: int
    network_id: int
    expires_at: float | None  # epoch seconds


def _key(token: str | None, rede: str | None) -> Key | None:
    if token is None or not security.well_formed(token):
        return None
    return hashlib.sha256(token.encode("utf-8")).digest(), rede


def _json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json"


class IngestFastPath:
    """The remembered authorizations of one worker, and the fast path that uses them."""

    def __init__(self, cache: LookupCache, writer: Callable[[], BatchWriter]) -> None:
        self._cache = cache
        self._writer = writer
        self._entries: dict[Key, Entry] = {}
        self._intervals: dict[int, tuple[int, int]] = {}  # network id -> (generation, heartbeat interval)
        self._lock = threading.Lock()

    def remember(self, creds: Credentials, auth: Authorized, interval: int | None = None) -> None:
        """Keep the full path's authorization (and the network's heartbeat interval) for the same key."""
        key = _key(creds.token, creds.rede)
        if key is None:
            return
        expires = auth.expires_at.timestamp() if auth.expires_at is not None else None
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = Entry(auth.generation, auth.token_id, auth.network.id, expires)
            if interval is not None:
                if len(self._intervals) >= MAX_ENTRIES:
                    self._intervals.clear()
                self._intervals[auth.network.id] = (auth.generation, interval)

    def _entry(self, scope: Scope, headers: dict[bytes, str]) -> Entry | None:
        """The remembered authorization for a plain request, or None (then the full path answers)."""
        encoding = headers.get(b"content-encoding", "identity").strip().lower()
        if not _json(headers.get(b"content-type")) or encoding not in ("identity", "gzip", "x-gzip"):
            return None
        length = headers.get(b"content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            return None
        plain, rede = rede_only(scope)
        if not plain:
            return None
        key = _key(presented_token(headers.get(b"x-bot-token"), headers.get(b"authorization")), presented_rede(rede))
        entry = self._entries.get(key) if key is not None else None
        if entry is None or (entry.expires_at is not None and time.time() >= entry.expires_at):
            return None
        if self._cache.touch_pending(entry.token_id):
            return None
        return entry

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer the request, or give back the `receive` the full path must use (None: answered)."""
        start = time.perf_counter()
        path: str = scope["path"]
        headers = first_headers(scope, _HEADERS)
        entry = self._entry(scope, headers)
        if entry is None:
            return receive
        interval = None
        if path == CHECKIN_PATH:
            known = self._intervals.get(entry.network_id)
            if known is None or known[0] != entry.generation:
                return receive
            interval = known[1]
        raw = await _read(receive)
        if raw is None:
            return None  # the client went away
        replay = _replaying(raw, receive)
        try:
            decoded = body.decode(raw, headers.get(b"content-encoding"), MAX_DECODED_BYTES)
            parsed = MODELS[path].model_validate_json(decoded)
        except (ApiError, ValidationError):
            return replay
        received = Received(entry.network_id, parsed, datetime.now(UTC), looks_secret(decoded), decoded,
                            generation=entry.generation)
        try:
            result = await asyncio.wrap_future(self._writer().submit(received))
        except StoreFailed:
            return replay
        if result == STALE:
            return replay
        if interval is not None:
            answer = CheckInAnswer(server_time=datetime.now(UTC), heartbeat_interval_s=interval)
            response = JSONResponse(answer.model_dump(mode="json"))
        elif result:
            response = JSONResponse({"run_id": parsed.run_id, "duplicate": True}, status_code=200)  # type: ignore[attr-defined]
        else:
            response = JSONResponse({"run_id": parsed.run_id}, status_code=201)  # type: ignore[attr-defined]
        await response(scope, replay, send)
        REQUESTS.labels("POST", path, str(response.status_code)).inc()
        FAST_INGEST.labels(path).inc()
        LATENCY.labels(path).observe(time.perf_counter() - start)
        return None


async def _read(receive: Receive) -> bytes | None:
    """The whole body (its length was checked against the limit), or None if the client disconnected."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(raw: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A `receive` that hands over the body already read, then waits on the connection as before."""
    pending = [raw]

    async def replay() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replay


def answers(path: str, method: str) -> bool:
    return method == "POST" and path in MODELS

