"""Prometheus metrics and the ASGI middleware that records them.

With several workers, `serve` points PROMETHEUS_MULTIPROC_DIR at a fresh directory before the
workers start, so `/metrics` sums every worker (prometheus_client multiprocess mode).
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("flageemonitor_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "flageemonitor_http_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GUARD_REJECTIONS = Counter(
    "flageemonitor_http_guard_rejections_total", "Connections refused by the HTTP guard", ["reason"]
)
MEMORY_ANSWERS = Counter(
    "flageemonitor_config_poll_memory_answers_total",
    "Config polls answered from memory, without database work (also counted in the request totals)",
    ["status"],
)
WATCH_GENERATION = Gauge(
    "flageemonitor_change_watch_generation",
    "The lowest change generation the workers' PostgreSQL change watches have been told of",
    multiprocess_mode="livemin",
)
FAST_INGEST = Counter(
    "flageemonitor_ingest_fast_path_total",
    "Check-ins and run reports stored and answered before the framework (also counted in the request totals)",
    ["route"],
)
AUTH_FAILURES = Counter("flageemonitor_auth_failures_total", "Rejected authentications", ["reason"])


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware) so it adds microseconds, not a task per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope.get("method", ""), label, str(status)).inc()
            LATENCY.labels(label).observe(time.perf_counter() - start)
