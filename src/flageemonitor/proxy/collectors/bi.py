"""The customer's BI API: POST a JSON list to `https://{PARAM_BI_SERVER}{path}`.

- TLS is always verified: against `PARAM_BI_CERTI_PATH` (a CA bundle) when set, else the system
  CAs. `PARAM_BI_SERVER` is a host (`bi.example.com[:port][/prefix]`); a full `https://` URL is
  accepted too, `http://` is refused.
- `Authorization: Bearer PARAM_TOKEN_BI`; the token never appears in a URL, a log line or an error.
- Every request is bounded: connect 10 s, read/write `PARAM_BI_TIMEOUT` (90 s). One connection is
  kept alive for all the batches of a run.
- Only a 2xx answer acknowledges a batch. 401/403 (a token problem, fixed in the config), 408,
  429, 5xx, transport errors and timeouts are `BiUnavailable` (retry later, order kept); any other
  answer is `BiRejected` (the batch will never be accepted as it is).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import httpx

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


class BiClient:
    """One keep-alive connection to the BI; use one instance per thread."""

    def __init__(self, config: BotConfig) -> None:
        self.url = base_url(config)
        token = (config.PARAM_TOKEN_BI or "").strip()
        if not token:
            raise BiNotConfigured("PARAM_TOKEN_BI is not set: the BI needs its bearer token")
        self._token = token
        timeout = float(config.PARAM_BI_TIMEOUT)
        self._http = httpx.Client(
            verify=_tls(config),
            timeout=httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT_S, timeout)),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                     "User-Agent": "flageemonitor-collector"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def _clean(self, text: str) -> str:
        return " ".join(text.replace(self._token, "***").split())[:300]

    def post(self, path: str, body: bytes) -> None:
        """Send one batch; returns when the BI acknowledged it (2xx), raises BiError otherwise."""
        target = f"{self.url}{path}"
        try:
            resp = self._http.post(target, content=body)
        except httpx.TimeoutException as exc:
            raise BiUnavailable(f"BI {target}: no answer in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise BiUnavailable(self._clean(f"BI {target}: {type(exc).__name__}: {exc}")) from None
        if 200 <= resp.status_code < 300:
            return
        detail = self._clean(f"BI {target}: HTTP {resp.status_code} {resp.text[:200]}")
        if resp.status_code in (401, 403, 408, 429) or resp.status_code >= 500:
            raise BiUnavailable(detail)
        raise BiRejected(resp.status_code, detail)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
