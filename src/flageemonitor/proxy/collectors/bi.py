"""The customer's BI API: POST a JSON list to `https://{PARAM_BI_SERVER}{path}`.

- TLS is always verified: against `PARAM_BI_CERTI_PATH` (a CA bundle) when set, else the system
  CAs. `PARAM_BI_SERVER` is a host (`bi.example.com[:port][/prefix]`); a full `https://` URL is
  accepted too, `http://` is refused. `HTTPS_PROXY` / `NO_PROXY` are honoured (a CONNECT tunnel;
  TLS still ends at the BI).
- `Authorization: Bearer PARAM_TOKEN_BI`; the token never appears in a URL, a log line or an error.
- Every request is bounded: connect 10 s, each read/write `PARAM_BI_TIMEOUT` (90 s). A client keeps
  one connection alive for all the batches it sends (one client per thread), and opens a new one
  when the BI closed it.
- Only a 2xx answer acknowledges a batch. 401/403 (a token problem, fixed in the config), 408,
  429, 5xx, transport errors and timeouts are `BiUnavailable` (retry later, order kept); any other
  answer is `BiRejected` (the batch will never be accepted as it is).

The client is the standard library's `http.client`: a third of httpx's CPU per request, which
matters at thousands of batches a minute.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import urllib.request
from urllib.parse import urlsplit

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import FlageeError

CONNECT_TIMEOUT_S = 10.0


class BiError(FlageeError):
    """A batch was not acknowledged."""


class BiNotConfigured(BiError):
    """PARAM_BI_SERVER, PARAM_TOKEN_BI or the CA bundle is missing or unusable."""


class BiUnavailable(BiError):
    """The BI did not answer, answered too late, or answered with a retryable status."""


class BiRejected(BiError):
    """The BI refused the batch for good (a 4xx other than 401/403/408/429)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def base_url(config: BotConfig) -> str:
    server = (config.PARAM_BI_SERVER or "").strip().rstrip("/")
    if not server:
        raise BiNotConfigured("PARAM_BI_SERVER is not set: the collectors have nowhere to send")
    if server.lower().startswith("http://"):
        raise BiNotConfigured("PARAM_BI_SERVER must use https (the token travels with every batch)")
    url = server if server.lower().startswith("https://") else f"https://{server}"
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.query:
        raise BiNotConfigured(f"PARAM_BI_SERVER {server!r} is not a host[:port][/path]")
    return url


def _tls(config: BotConfig) -> ssl.SSLContext:
    path = (config.PARAM_BI_CERTI_PATH or "").strip()
    try:
        return ssl.create_default_context(cafile=path or None)
    except (OSError, ssl.SSLError) as exc:
        raise BiNotConfigured(f"PARAM_BI_CERTI_PATH {path!r}: {getattr(exc, 'strerror', None) or exc}") from None


def _proxy_for(host: str) -> tuple[str, int] | None:
    """The HTTPS proxy (host, port) the environment names for `host`, if any."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get("https")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        return None
    return parts.hostname, parts.port or 80


class BiClient:
    """One keep-alive connection to the BI; use one instance per thread."""

    def __init__(self, config: BotConfig) -> None:
        url = base_url(config)
        token = (config.PARAM_TOKEN_BI or "").strip()
        if not token:
            raise BiNotConfigured("PARAM_TOKEN_BI is not set: the BI needs its bearer token")
        self._token = token
        parts = urlsplit(url)
        self.url = url
        self._host, self._port = parts.hostname or "", parts.port or 443
        self._prefix = parts.path.rstrip("/")
        self._timeout = float(config.PARAM_BI_TIMEOUT)
        self._tls = _tls(config)
        self._proxy = _proxy_for(self._host)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                         "User-Agent": "flageemonitor-collector", "Connection": "keep-alive"}
        self._conn: http.client.HTTPSConnection | None = None

    def _clean(self, text: str) -> str:
        return " ".join(text.replace(self._token, "***").split())[:300]

    def _connection(self) -> http.client.HTTPSConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # a kept-alive connection the BI has closed (or that holds unexpected bytes) is readable
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:
                return conn
            self.close()
        elif conn is not None:
            self.close()
        connect_s = min(CONNECT_TIMEOUT_S, self._timeout)
        if self._proxy is None:
            conn = http.client.HTTPSConnection(self._host, self._port, context=self._tls, timeout=connect_s)
        else:
            conn = http.client.HTTPSConnection(self._proxy[0], self._proxy[1], context=self._tls, timeout=connect_s)
            conn.set_tunnel(self._host, self._port)
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock.settimeout(self._timeout)
        self._conn = conn
        return conn

    def post(self, path: str, body: bytes) -> None:
        """Send one batch; returns when the BI acknowledged it (2xx), raises BiError otherwise."""
        target = f"{self.url}{path}"
        try:
            conn = self._connection()
            conn.request("POST", f"{self._prefix}{path}", body=body, headers=self._headers)
            resp = conn.getresponse()
            text = resp.read()
            status = resp.status
            if resp.will_close:
                self.close()
        except TimeoutError as exc:
            self.close()
            raise BiUnavailable(f"BI {target}: no answer in time ({type(exc).__name__})") from None
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise BiUnavailable(self._clean(f"BI {target}: {type(exc).__name__}: {exc}")) from None
        if 200 <= status < 300:
            return
        detail = self._clean(f"BI {target}: HTTP {status} {text[:200].decode('utf-8', 'replace')}")
        if status in (401, 403, 408, 429) or status >= 500:
            raise BiUnavailable(detail)
        raise BiRejected(status, detail)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> BiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
