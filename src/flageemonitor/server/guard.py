"""HTTP guard: the limits a client cannot push the server past, enforced before the app runs.

uvicorn's httptools protocol with four additions (`serve` selects it; settings in
`core.config`):

- **header bytes**: a request whose request line and headers exceed `max_header_bytes` is answered
  431 and the connection closed; at most one read (64 KiB) more is ever buffered;
- **header count**: more than `max_headers` header lines → 431;
- **header deadline**: a connection must deliver a complete request head within `header_timeout`
  seconds of opening (or of its previous request ending), else 408 and close: slow-header
  connections cannot pile up;
- **connections per address**: at most `max_connections_per_address` open connections per client
  address and worker (503 and close beyond); addresses of trusted proxies are exempt, since
  every client behind them shares their address.

Rejections are counted in `flageemonitor_http_guard_rejections_total{reason}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flageemonitor.server.metrics import GUARD_REJECTIONS

PROTOCOL = "flageemonitor.server.guard:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    max_connections_per_address: int = 64
    exempt: tuple[str, ...] = ()  # trusted proxies: addresses or networks

    def is_exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.exempt)


_limits = Limits()
_open: dict[str, int] = {}  # open connections per client address, in this worker


def configure(limits: Limits) -> None:
    """Called by the app factory in each worker, before it accepts connections."""
    global _limits
    _limits = limits


_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits
        self._address: str | None = None
        self._in_head = True
        self._head_bytes = 0
        self._head_count = 0
        self._too_many_headers = False
        self._rejected = False
        self._head_timer: asyncio.TimerHandle | None = None

    # --- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address is not None and not self._limits.is_exempt(address):
            count = _open.get(address, 0) + 1
            _open[address] = count
            self._address = address
            if count > self._limits.max_connections_per_address:
                self._reject(503, "too many connections from this address", "connections")
                return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        if self._address is not None:
            left = _open.get(self._address, 1) - 1
            if left > 0:
                _open[self._address] = left
            else:
                _open.pop(self._address, None)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._rejected:
            return
        if self._too_many_headers:
            self._reject(431, f"more than {self._limits.max_headers} header lines", "header_count")
        elif self._in_head and self._head_bytes > self._limits.max_header_bytes:
            self._reject(431, f"request head larger than {self._limits.max_header_bytes} bytes", "header_bytes")

    # --- parser callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_count += 1
        if self._head_count > self._limits.max_headers:
            self._too_many_headers = True
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._too_many_headers:
            return  # the app never sees this request; data_received answers 431
        self._in_head = False
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next bytes are the next request's head
        self._head_bytes = 0
        self._head_count = 0
        self._arm_head_timer()

    # --- helpers
    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self._rejected and not self.transport.is_closing():
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm_head_timer()  # the app is still answering: the next head's deadline starts later
                return
            if self._head_bytes == 0 and self.cycle is not None:
                # idle between keep-alive requests: uvicorn's own keep-alive timeout governs that
                self.transport.close()
                return
            self._reject(408, f"request head not complete within {self._limits.header_timeout:g} s", "header_timeout")

    def _reject(self, status: int, message: str, reason: str) -> None:
        self._rejected = True
        self._disarm_head_timer()
        GUARD_REJECTIONS.labels(reason).inc()
        body = message.encode("ascii")
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n") % (status, _REASONS[status], len(body))
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()
