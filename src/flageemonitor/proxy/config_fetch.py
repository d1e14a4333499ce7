"""One GET of `config_bot.json` from the control plane, bounded in time and size.

Rules:
- the token travels in the `X-Bot-Token` header only; redirects are not followed;
- each connect/read has its own timeout, and the whole exchange has a total deadline
  (`FLAGEEMONITOR_CONFIG_TIMEOUT`, 60 s): a server that trickles one byte at a time cannot hold a
  refresh longer than that;
- a body over `MAX_BODY_BYTES` is refused while it streams;
- a refused request names the URL tried and relays the server's own `error`/`message`
  (and `Retry-After` on 429), so the operator sees what to fix.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit, urlunsplit

import httpx

from flageemonitor import __version__
from flageemonitor.core.signing import HEADER as SIGNATURE_HEADER

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_ERROR_BODY_BYTES = 4096
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=10.0)
DEFAULT_DEADLINE_S = 60.0
PLAIN_HTTP_WARNING = "the config URL is plain http://: the token and the config cross the network unencrypted"


class Code(IntEnum):
    """Exit codes of `flageemonitor update-config` (see proxy.configstore)."""

    OK = 0
    NOT_CONFIGURED = 2
    NETWORK = 3
    AUTH = 4
    SERVER = 5
    INVALID = 6
    LOCAL = 7
    UNTRUSTED = 8


@dataclass(frozen=True)
class Source:
    url: str
    token: str
    rede: str | None

    def __repr__(self) -> str:  # never show the token
        return f"Source(url={self.url!r}, rede={self.rede!r})"

    @property
    def display_url(self) -> str:
        """The URL without user info or query, for messages."""
        return display_url(self.url)

    @property
    def plain_http(self) -> bool:
        """True when the token would cross a network unencrypted (plain http to a non-loopback host)."""
        parts = urlsplit(self.url)
        if parts.scheme.lower() != "http":
            return False
        host = (parts.hostname or "").lower()
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True


def display_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Fetched:
    """A 200 answer (body complete), or `not_modified` for 304."""

    body: bytes
    etag: str | None
    not_modified: bool = False
    signature: str | None = None  # the X-FlageeMonitor-Signature header, as received


@dataclass(frozen=True)
class Refused:
    code: Code
    reason: str


def server_says(status: int, reason_phrase: str, body: bytes, retry_after: str | None) -> str:
    text = f"{status} {reason_phrase}".strip()
    try:
        doc = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        error = doc.get("error")
        text += f" ({error}: {doc['message']})" if isinstance(error, str) else f" ({doc['message']})"
    if retry_after:
        text += f"; retry after {retry_after} s"
    return " ".join(text.split())[:500]


def keys_url(config_url: str) -> str:
    """Where the server lists its config signing keys: `<config URL>/keys`, without the query."""
    parts = urlsplit(config_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/keys", "", ""))


async def _get(source: Source, etag: str | None, timeout: httpx.Timeout, *, keys: bool = False) -> Fetched | Refused:
    headers = {"User-Agent": f"flageemonitor-proxy/{__version__}", "Accept": "application/json"}
    if not keys:  # the key list is public: the token is not sent for it
        headers["X-Bot-Token"] = source.token
    if etag:
        headers["If-None-Match"] = etag
    params = {"rede": source.rede} if source.rede and not keys else None
    url = keys_url(source.url) if keys else source.url
    where = display_url(url)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client, client.stream(
        "GET", url, headers=headers, params=params
    ) as resp:
        status = resp.status_code
        if status == 304:
            return Fetched(b"", None, not_modified=True)
        if status != 200:
            small = bytearray()
            async for chunk in resp.aiter_bytes():
                small.extend(chunk)
                if len(small) >= MAX_ERROR_BODY_BYTES:
                    break
            said = server_says(status, resp.reason_phrase, bytes(small[:MAX_ERROR_BODY_BYTES]),
                                resp.headers.get("Retry-After"))
            if status in (401, 403):
                return Refused(Code.AUTH, f"{where} rejected the token: {said}")
            return Refused(Code.SERVER, f"{where} answered {said}")
        body = bytearray()
        async for chunk in resp.aiter_bytes():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                return Refused(Code.INVALID, f"{where} sent a config larger than {MAX_BODY_BYTES} bytes")
        return Fetched(bytes(body), resp.headers.get("ETag"), signature=resp.headers.get(SIGNATURE_HEADER))


def fetch(source: Source, etag: str | None, *, timeout: httpx.Timeout = DEFAULT_TIMEOUT,
          deadline_s: float = DEFAULT_DEADLINE_S, keys: bool = False) -> Fetched | Refused:
    """GET the config (or, with `keys`, the server's signing key list); never raises for network
    or HTTP trouble."""
    where = display_url(keys_url(source.url)) if keys else source.display_url

    async def bounded() -> Fetched | Refused:
        async with asyncio.timeout(deadline_s):
            return await _get(source, etag, timeout, keys=keys)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        return Refused(Code.NETWORK, f"no complete answer from {where} within {deadline_s:g} s")
    except httpx.TimeoutException as exc:
        return Refused(Code.NETWORK, f"timed out talking to {where} ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return Refused(Code.NETWORK, f"cannot fetch config from {where}: {type(exc).__name__}: {one_line(exc)}")
    except httpx.InvalidURL as exc:
        return Refused(Code.NOT_CONFIGURED, f"invalid config URL: {one_line(exc)}")


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
