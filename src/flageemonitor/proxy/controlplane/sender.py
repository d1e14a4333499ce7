"""POST one spooled body to the control plane, bounded in time, and say what the answer means.

- Where: `FLAGEEMONITOR_API_BASE` + `/bot/checkin` or `/bot/runs`; without an API base, the config
  URL (`FLAGEEMONITOR_CONFIG_URL`) with its last path segment replaced (`…/bot/config` →
  `…/bot/runs`). The `ARIUSMONITOR_` twins work too. `FLAGEEMONITOR_REPORTING=false` turns
  reporting off.
- How: the token in the `X-Bot-Token` header only (never in a URL), `?rede=` as for the config,
  TLS verified, redirects not followed, connect/read/write timeouts and a total deadline per
  request (a server that trickles its answer cannot hold a delivery pass).
- The answer: `delivered` (2xx, including the server's "already stored" 200 for a resent run);
  `retry` (no answer, 5xx, 429, 401/403 — a token or scope an operator can fix —, 404 from a
  server without the endpoints, 400 `network_required`): the item stays and waits, in order;
  `refused` (any other 4xx: this body will never be accepted as it is).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from flageemonitor import __version__
from flageemonitor.core import env
from flageemonitor.proxy.config_fetch import display_url, one_line, server_says
from flageemonitor.proxy.controlplane.bodies import GZIP_MAGIC

DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=30.0, pool=10.0)
REQUEST_DEADLINE_S = 60.0
MAX_ANSWER_BYTES = 4096
RETRY_AFTER_MAX_S = 3600.0


@dataclass(frozen=True)
class Target:
    """The control plane's ingest endpoints and the credentials to use them."""

    scheme: str
    netloc: str
    prefix: str  # path up to the endpoint name, without a trailing slash
    query: str
    token: str
    rede: str | None

    def __repr__(self) -> str:  # never show the token
        return f"Target({display_url(self.url('runs'))!r}, rede={self.rede!r})"

    def url(self, endpoint: str) -> str:
        return urlunsplit((self.scheme, self.netloc, f"{self.prefix}/{endpoint}", self.query, ""))


def target_from_env(environ: Mapping[str, str] | None = None) -> Target | None:
    """The reporting target, or None (no URL, no token, or reporting turned off)."""
    switch = env.get("REPORTING", environ=environ)
    if switch is not None and not env.truthy(switch):
        return None
    token = env.get("TOKEN", environ=environ)
    base = env.get("API_BASE", environ=environ)
    url = base.rstrip("/") + "/bot/" if base else env.get("CONFIG_URL", environ=environ) or ""
    parts = urlsplit(url)
    if not token or parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    prefix = parts.path.rsplit("/", 1)[0]
    return Target(parts.scheme, parts.netloc, prefix, parts.query, token, env.get("REDE", environ=environ))


Kind = Literal["delivered", "retry", "refused"]


@dataclass(frozen=True)
class Answer:
    kind: Kind
    message: str  # one line: what happened, where (no token)
    status: int | None = None
    error: str | None = None  # the server's error code (`scope_denied`, `token_rejected`, ...)
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, RETRY_AFTER_MAX_S)


def _error_code(body: bytes) -> str | None:
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    code = doc.get("error") if isinstance(doc, dict) else None
    return code if isinstance(code, str) else None


def classify(status: int, reason: str, body: bytes, retry_after: str | None, where: str) -> Answer:
    if 200 <= status < 300:
        return Answer("delivered", f"{where}: {status}", status)
    said = server_says(status, reason, body, retry_after)
    code = _error_code(body)
    wait = _retry_after(retry_after)
    if status >= 500 or status in (401, 403, 404, 408, 429) or (status == 400 and code == "network_required"):
        return Answer("retry", f"{where} answered {said}", status, code, wait)
    return Answer("refused", f"{where} refused the body: {said}", status, code)


class Sender:
    """One HTTP client for a delivery pass; call `post` from inside `asyncio.run`."""

    def __init__(self, target: Target, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT,
                 deadline_s: float = REQUEST_DEADLINE_S) -> None:
        self.target = target
        self.deadline_s = deadline_s
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers={
            "X-Bot-Token": target.token, "User-Agent": f"flageemonitor-proxy/{__version__}",
            "Accept": "application/json", "Content-Type": "application/json"})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, endpoint: str, body: bytes) -> Answer:
        url = self.target.url(endpoint)
        where = display_url(url)
        headers = {"Content-Encoding": "gzip"} if body.startswith(GZIP_MAGIC) else {}
        params = {"rede": self.target.rede} if self.target.rede else None
        try:
            async with asyncio.timeout(self.deadline_s):
                async with self._client.stream("POST", url, content=body, headers=headers, params=params) as resp:
                    answer = bytearray()
                    async for chunk in resp.aiter_bytes():
                        answer.extend(chunk)
                        if len(answer) >= MAX_ANSWER_BYTES:
                            break
                    return classify(resp.status_code, resp.reason_phrase, bytes(answer[:MAX_ANSWER_BYTES]),
                                    resp.headers.get("Retry-After"), where)
        except TimeoutError:
            return Answer("retry", f"no complete answer from {where} within {self.deadline_s:g} s")
        except httpx.TimeoutException as exc:
            return Answer("retry", f"timed out talking to {where} ({type(exc).__name__})")
        except httpx.TransportError as exc:
            return Answer("retry", f"cannot reach {where}: {type(exc).__name__}: {one_line(exc)}")
        except httpx.InvalidURL as exc:
            return Answer("retry", f"invalid control plane URL: {one_line(exc)}")
