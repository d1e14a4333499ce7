"""Templates (autoescape on), their filters, and the headers every page carries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from flageemonitor import __version__
from flageemonitor.core.redact import redact
from flageemonitor.server.models import as_utc

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - as_utc(moment)).total_seconds())
    if seconds < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    return digest.split(":", 1)[-1][:12]


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("flageemonitor.server.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc, redact=lambda v: redact(v) if isinstance(v, str) else v, digest=short_digest)
    env.globals.update(ago=ago, version=__version__)
    return env


def page(template: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = environment().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


@cache
def stylesheet() -> bytes:
    return (resources.files("flageemonitor.server.web") / "static" / "fleet.css").read_bytes()
