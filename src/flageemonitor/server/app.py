"""The FastAPI application factory (`uvicorn --factory flageemonitor.server.app:create_app`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from flageemonitor import __version__
from flageemonitor.server import guard
from flageemonitor.server.api.admin_auth import ADMIN_SCHEME
from flageemonitor.server.api.config_poll import ConfigPoll, ControlPlaneApp
from flageemonitor.server.api.deps import SECURITY_SCHEMES
from flageemonitor.server.api.errors import ApiError, api_error_handler
from flageemonitor.server.api.ingest_fast_path import IngestFastPath
from flageemonitor.server.api.openapi import add_components
from flageemonitor.server.api.routes import admin, bootstrap, health, ingest, metrics, reports
from flageemonitor.server.cache import LookupCache
from flageemonitor.server.change_watch import watch_for
from flageemonitor.server.core.config import Settings
from flageemonitor.server.core.db import make_engine, make_sessionmaker
from flageemonitor.server.core.logging import install_redaction
from flageemonitor.server.core.secretbox import SecretBox
from flageemonitor.server.core.signer import Signer
from flageemonitor.server.metrics import MetricsMiddleware
from flageemonitor.server.services.retention import Pruner
from flageemonitor.server.web import pages


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # the objects loaded at start (framework, models, routes) live as long as the process: keep
    # them out of the collector, whose full passes over them were the server's latency tail
    gc.collect()
    gc.freeze()
    pruner = Pruner(app.state.engine, app.state.settings)
    pruner.start()
    app.state.pruner = pruner
    app.state.poll.start()
    yield
    pruner.stop()
    writer = getattr(app.state, "writer", None)
    if writer is not None:
        writer.close()
    app.state.poll.close()
    app.state.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    install_redaction()
    guard.configure(guard.Limits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout=settings.header_timeout,
        max_connections_per_address=settings.max_connections_per_address,
        exempt=settings.trusted_proxies,
    ))
    app = ControlPlaneApp(
        lifespan=_lifespan,
        title="FlageeMonitor control plane",
        version=__version__,
        description="Bootstrap installers and per-network config_bot.json for FlageeMonitor proxies.",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.cache = LookupCache()
    app.state.box = SecretBox(settings.key_file)
    app.state.signer = Signer(settings.signing_file)
    app.state.poll = app.poll = ConfigPoll(watch_for(settings.database_url), app.state.cache)
    app.state.ingest = app.ingest = IngestFastPath(app.state.cache, lambda: reports.writer_of(app.state))
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_middleware(MetricsMiddleware)
    if settings.trusted_proxies:
        # X-Forwarded-For/-Proto are believed only from these addresses (the rightmost address not
        # in the list is the client); everyone else's forwarded headers are ignored
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    for module in (health, ingest, reports, bootstrap, admin, metrics, pages):
        app.include_router(module.router)
    _describe_security(app)
    return app


def _describe_security(app: FastAPI) -> None:
    """Add the token schemes the routes reference (they read the headers themselves)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = {**SECURITY_SCHEMES, **ADMIN_SCHEME}
            add_components(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
