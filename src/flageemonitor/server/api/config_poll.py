"""The config poll's fast path: `GET /api/ingest/bot/config` answered from memory when nothing changed.

What thousands of proxies do all day is ask for a config they already have. The full path
(FastAPI route, worker thread, database) remembers each successful answer under the key the
request presented — (the token's SHA-256, `?rede=` as given) — and under the change-watch
stamp read before its database work (see `server.change_watch`). A later request with the same
key is answered by `ControlPlaneApp` before any middleware or routing, only while all of this holds:

- the stamp is unchanged: nobody committed anything since, so no token was revoked, no scope
  or network changed and no config version was stored (any commit moves it; then the full path
  answers and remembers again);
- the token has not expired (checked against the clock on every request);
- the token's last-use time is not due to be recorded (once a minute per worker: that request
  takes the full path, which writes it).

Everything else — an unknown or malformed token (counted against the address's failure budget),
a missing token, a query other than `?rede=`, a watch without a stamp (see `server.change_watch`) —
takes the full path, so status codes, rate limiting and token bookkeeping are the route's own.
The answer carries the very headers the route sends (`config_headers`), built once per stored
version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from flageemonitor.core.signing import HEADER as SIGNATURE_HEADER
from flageemonitor.server.api.deps import Authorized, presented_rede, presented_token
from flageemonitor.server.api.ingest_fast_path import IngestFastPath
from flageemonitor.server.api.ingest_fast_path import answers as ingest_answers
from flageemonitor.server.api.raw_request import first_headers, rede_only
from flageemonitor.server.cache import ConfigView, LookupCache
from flageemonitor.server.change_watch import ChangeWatch
from flageemonitor.server.core import security
from flageemonitor.server.metrics import LATENCY, MEMORY_ANSWERS, REQUESTS

CONFIG_PATH = "/api/ingest/bot/config"
STAMP_KEY = "flageemonitor.poll_stamp"  # scope key: the stamp read before the full path ran
MAX_ENTRIES = 20_000
Headers = list[tuple[bytes, bytes]]
_POLL_HEADERS = (b"x-bot-token", b"authorization", b"if-none-match")


def matches(if_none_match: str | None, etag: str) -> bool:
    """True when `If-None-Match` names `etag` (weak or strong) or is `*`."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def config_headers(view: ConfigView) -> dict[str, str]:
    """The headers of every config answer, 200 and 304 alike."""
    return {"ETag": view.etag, "Cache-Control": "no-cache", "X-Config-Version": str(view.version)}


def body_headers(view: ConfigView) -> dict[str, str]:
    """The headers of a 200 answer: the common ones and the signature over the body."""
    return {**config_headers(view), SIGNATURE_HEADER: view.signature}


@dataclass(frozen=True)
class Rendered:
    """One stored config version's answers, as raw ASGI headers (shared by every token)."""

    view: ConfigView
    not_modified: Headers
    ok: Headers

    @classmethod
    def of(cls, view: ConfigView) -> Rendered:
        common = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in config_headers(view).items()]
        signed = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in body_headers(view).items()]
        ok = [*signed, (b"content-length", str(len(view.body)).encode()), (b"content-type", b"application/json")]
        return cls(view, common, ok)


@dataclass(frozen=True)
class Entry:
    stamp: int
    token_id: int
    expires_at: float | None  # epoch seconds
    rendered: Rendered


def _key(x_bot_token: str | None, authorization: str | None, rede: str | None) -> tuple[bytes, str | None] | None:
    token = presented_token(x_bot_token, authorization)
    if token is None or not security.well_formed(token):
        return None
    return hashlib.sha256(token.encode("utf-8")).digest(), presented_rede(rede)


class ConfigPoll:
    """The remembered answers of one worker."""

    def __init__(self, watch: ChangeWatch | None, cache: LookupCache) -> None:
        self.watch = watch
        self._cache = cache
        self._entries: dict[tuple[bytes, str | None], Entry] = {}
        self._rendered: dict[tuple[str, str], Rendered] = {}  # (network, etag)
        self._lock = threading.Lock()
        self._metrics: dict[int, tuple[Any, Any, Any]] = {}

    def answer(self, scope: Scope) -> tuple[int, Headers, bytes] | None:
        """The fast answer for this request, or None (then the stamp is left in the scope)."""
        if self.watch is None:
            return None
        stamp = self.watch.stamp()
        if stamp is None:
            return None
        scope[STAMP_KEY] = stamp
        headers = first_headers(scope, _POLL_HEADERS)
        plain, rede = rede_only(scope)
        if not plain:
            return None
        key = _key(headers.get(b"x-bot-token"), headers.get(b"authorization"), rede)
        entry = self._entries.get(key) if key is not None else None
        if entry is None or entry.stamp != stamp:
            return None
        if entry.expires_at is not None and time.time() >= entry.expires_at:
            return None
        if self._cache.touch_pending(entry.token_id):
            return None
        rendered = entry.rendered
        if matches(headers.get(b"if-none-match"), rendered.view.etag):
            return 304, rendered.not_modified, b""
        return 200, rendered.ok, rendered.view.body

    def remember(self, scope: Scope, x_bot_token: str | None, authorization: str | None, rede: str | None,
                 auth: Authorized, view: ConfigView) -> None:
        """Keep the full path's answer for the same key, under the stamp read before it ran."""
        stamp = scope.get(STAMP_KEY)
        key = _key(x_bot_token, authorization, rede)
        if stamp is None or key is None:
            return
        with self._lock:
            rendered = self._rendered.get((view.network, view.etag))
            if rendered is None or rendered.view != view:
                if len(self._rendered) >= MAX_ENTRIES:
                    self._rendered.clear()
                rendered = self._rendered[(view.network, view.etag)] = Rendered.of(view)
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            expires = auth.expires_at.timestamp() if auth.expires_at is not None else None
            self._entries[key] = Entry(stamp, auth.token_id, expires, rendered)

    def metrics(self, status: int) -> tuple[Any, Any, Any]:
        """The route's request counter and latency histogram, and the memory-answer counter, for `status`."""
        bound = self._metrics.get(status)
        if bound is None:
            bound = self._metrics[status] = (
                REQUESTS.labels("GET", CONFIG_PATH, str(status)), LATENCY.labels(CONFIG_PATH),
                MEMORY_ANSWERS.labels(str(status)))
        return bound

    def start(self) -> None:
        if self.watch is not None:
            self.watch.start()

    def close(self) -> None:
        if self.watch is not None:
            self.watch.close()


class ControlPlaneApp(FastAPI):
    """The FastAPI application with the config poll's and the ingest's fast paths in front of its
    middleware stack (see `api.ingest_fast_path` for the latter).

    A fast answer is counted in the same request metrics, under the route's own label.
    """

    poll: ConfigPoll | None = None
    ingest: IngestFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ingest = self.ingest
        if ingest is not None and scope["type"] == "http" and ingest_answers(scope["path"], scope["method"]):
            forward = await ingest.handle(scope, receive, send)
            if forward is None:
                return
            receive = forward
        poll = self.poll
        if poll is not None and scope["type"] == "http" and scope["path"] == CONFIG_PATH and scope["method"] == "GET":
            start = time.perf_counter()
            answer = poll.answer(scope)
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                requests, latency, memory = poll.metrics(status)
                requests.inc()
                memory.inc()
                latency.observe(time.perf_counter() - start)
                return
        await super().__call__(scope, receive, send)
