"""A Zabbix API connection built from the config, with errors that say what went wrong.

- URL: `PARAM_ZABBIX_URL` (full URL, http or https) wins; else `https://<PARAM_ZABBIX_SERVER>`
  (a bare host, or a host with a path; `api_jsonrpc.php` is appended when missing).
- Auth: the API token `PARAM_TOKEN`, else `PARAM_ZABBIX_USER` / `PARAM_ZABBIX_PASSWORD`.
- TLS is verified unless `PARAM_ZABBIX_VERIFY_TLS` is false; `PARAM_ZABBIX_CA_BUNDLE` adds a CA.
- Every failure (transport, JSON-RPC `error`, unsupported version) raises `ZabbixError`, an
  `InventoryError`, whose text names the API method and the server's message and never carries
  a token or a password.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from zabbix_utils import ZabbixAPI
from zabbix_utils.exceptions import APINotSupported, APIRequestError, ProcessingError

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import InventoryError
from flageemonitor.core.redact import Redactor
from flageemonitor.proxy.zabbix.compat import ApiVersion, Compat

log = logging.getLogger("flageemonitor.zabbix")

# zabbix-utils logs request bodies (session ids, user.login passwords) at DEBUG: keep it above.
logging.getLogger("zabbix_utils").setLevel(logging.INFO)

JSONRPC = "api_jsonrpc.php"
DEFAULT_TIMEOUT = 30


class ZabbixError(InventoryError):
    """The Zabbix API could not be reached or answered with an error."""


@dataclass(frozen=True)
class ZabbixSettings:
    url: str
    token: str | None
    user: str | None
    password: str | None
    verify_tls: bool = True
    ca_bundle: str | None = None
    timeout: int = DEFAULT_TIMEOUT

    def __repr__(self) -> str:  # never show credentials
        return f"ZabbixSettings(url={self.url!r}, auth={self.auth_kind!r}, verify_tls={self.verify_tls})"

    @property
    def auth_kind(self) -> str:
        if self.token:
            return "token"
        if self.user:
            return "password"
        return "none"


def api_url(config: BotConfig) -> str:
    """The JSON-RPC endpoint URL from `PARAM_ZABBIX_URL` (wins) or `PARAM_ZABBIX_SERVER`."""
    if config.PARAM_ZABBIX_URL:
        url = config.PARAM_ZABBIX_URL.strip()
        if not url.lower().startswith(("http://", "https://")):
            raise ZabbixError(f"PARAM_ZABBIX_URL {url!r} must start with http:// or https://")
    elif config.PARAM_ZABBIX_SERVER:
        server = config.PARAM_ZABBIX_SERVER.strip().rstrip("/")
        url = server if server.lower().startswith(("http://", "https://")) else f"https://{server}"
    else:
        raise ZabbixError("Zabbix is not configured: set PARAM_ZABBIX_URL or PARAM_ZABBIX_SERVER")
    parts = urlsplit(url)
    if not parts.hostname:
        raise ZabbixError(f"Zabbix URL {url!r} has no host")
    if parts.username or parts.password:
        raise ZabbixError("the Zabbix URL must not carry credentials; use PARAM_TOKEN or PARAM_ZABBIX_USER")
    if not parts.path.endswith(JSONRPC):
        url = url.rstrip("/") + "/" + JSONRPC
    return url


def settings_from(config: BotConfig) -> ZabbixSettings:
    return ZabbixSettings(
        url=api_url(config),
        token=config.PARAM_TOKEN or None,
        user=config.PARAM_ZABBIX_USER or None,
        password=config.PARAM_ZABBIX_PASSWORD or None,
        verify_tls=config.PARAM_ZABBIX_VERIFY_TLS,
        ca_bundle=config.PARAM_ZABBIX_CA_BUNDLE or None,
    )


def _scrub(text: str, settings: ZabbixSettings) -> str:
    return Redactor([settings.token, settings.password]).redact(text)


class ZabbixClient:
    """A logged-in API connection plus the version differences (`compat`)."""

    def __init__(self, settings: ZabbixSettings) -> None:
        self.settings = settings
        self._api = self._connect()
        try:
            self.version = ApiVersion.parse(str(self._api.api_version()))
        except ValueError as exc:
            raise ZabbixError(str(exc)) from None
        self.compat = Compat(self.version)

    def _fail(self, what: str, exc: BaseException) -> ZabbixError:
        return ZabbixError(_scrub(f"Zabbix API at {self.settings.url}: {what}: {exc}", self.settings))

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.ca_bundle or not self.settings.verify_tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.settings.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ZabbixError(f"PARAM_ZABBIX_CA_BUNDLE {self.settings.ca_bundle!r}: {exc}") from None

    def _connect(self) -> ZabbixAPI:
        s = self.settings
        if s.auth_kind == "none":
            raise ZabbixError("no Zabbix credentials: set PARAM_TOKEN (API token) or PARAM_ZABBIX_USER/PASSWORD")
        if s.auth_kind == "password" and not s.password:
            raise ZabbixError("PARAM_ZABBIX_USER is set but PARAM_ZABBIX_PASSWORD is empty")
        try:
            api = ZabbixAPI(
                url=s.url,
                validate_certs=s.verify_tls,
                ssl_context=self._ssl_context(),
                timeout=s.timeout,
            )
        except (APIRequestError, APINotSupported, ProcessingError, OSError) as exc:
            raise self._fail("cannot read the API version", exc) from None
        try:
            if s.token:
                api.login(token=s.token)
                api.host.get(countOutput=True, limit=1)  # a token is only checked on first use
            else:
                api.login(user=s.user, password=s.password)
        except APIRequestError as exc:
            raise self._fail("authentication rejected", exc) from None
        except (APINotSupported, ProcessingError, OSError) as exc:
            raise self._fail("cannot log in", exc) from None
        return api

    def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        """Call `object.method` with `params`; JSON-RPC errors raise ZabbixError."""
        try:
            return self._api.send_api_request(method, params or {}).get("result")
        except APIRequestError as exc:
            message = getattr(exc, "message", "")
            data = getattr(exc, "data", "")
            detail = f"{message} {data}".strip() if message or data else str(exc)
            raise ZabbixError(_scrub(f"Zabbix API {method} failed: {detail}", self.settings)) from None
        except (ProcessingError, OSError) as exc:
            raise self._fail(f"{method} failed", exc) from None

    def close(self) -> None:
        try:
            if not self.settings.token:
                self._api.logout()
        except Exception as exc:  # logging out is best effort
            log.debug("Zabbix logout failed: %s", type(exc).__name__)

    def __enter__(self) -> ZabbixClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(config: BotConfig) -> ZabbixClient:
    return ZabbixClient(settings_from(config))
