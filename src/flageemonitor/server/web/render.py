"""Templates (autoescape on), their filters, and the headers every page carries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from html import escape as _e  # str in, str out: a third of markupsafe's cost per value
from importlib import resources
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from flageemonitor import __version__
from flageemonitor.core.redact import redact
from flageemonitor.server.models import as_utc
from flageemonitor.server.services.fleet_views import LastRun, NetworkView

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
    seconds = int((now - as_utc(moment)).total_seconds())  # as_utc: SQLite's naive values
    if seconds < 0:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def utc(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return as_utc(moment).isoformat(" ", "seconds")[:19] + " UTC"  # isoformat: a tenth of strftime's cost


def short_digest(digest: str | None) -> str:
    if not digest:
        return "-"
    return digest.split(":", 1)[-1][:12]


def proxy_rows(net: NetworkView, now: datetime) -> Markup:
    """The rows of a network's proxy table (/fleet, /fleet/<network>), every text escaped.

    Built here rather than in a template loop because /fleet runs it for every proxy and every
    scheduled action (a thousand rows, several thousand links): the template's lookup and escape
    per value were most of the page's processor time.
    """
    if not net.proxies:
        return Markup('<tr><td colspan="7">No proxy has checked in yet.</td></tr>')
    runs_href = f"/fleet/{_e(net.code)}/runs/"
    stored = f'<span class="badge late">v{net.config_version} stored</span>'
    rows = []
    for p in net.proxies:
        error = f'<br><span class="detail">{_e(redact(p.last_error))}</span>' if p.last_error else ""
        if p.config_version is None:
            config = "-"
        else:
            badge = ('<span class="badge online">latest</span>' if p.config_latest
                     else stored if p.config_latest is not None else "")
            config = f"v{p.config_version} {badge}"
        rows.append(
            f'<tr class="sev{p.severity}">\n'
            f'<td data-label="State"><span class="badge {p.state}">{p.state}</span></td>\n'
            f'<td data-label="Proxy"><b>{_e(p.hostname or "(no check-in yet)")}</b><br>'
            f'<small class="mono">{_e(p.uid)}</small>{error}</td>\n'
            f'<td data-label="Last seen" title="{utc(p.last_seen)}">{ago(p.last_seen, now)}</td>\n'
            f'<td data-label="Image">{_e(p.image_version or "-")} '
            f'<small class="mono">{_e(short_digest(p.image_digest))}</small></td>\n'
            f'<td data-label="Config">{config}</td>\n'
            f'<td data-label="Last runs">{_run_links(runs_href, p.runs, now)}</td>\n'
            f'<td data-label="Spool">{p.spool_depth if p.spool_depth is not None else "-"}</td>\n'
            "</tr>"
        )
    return Markup("\n".join(rows))  # noqa: S704  every value in it was escaped (_e) or is a number


def _run_links(href: str, runs: Sequence[LastRun], now: datetime) -> str:
    if not runs:
        return "-"
    links = []
    for run in runs:
        counts = f"{run.ok} ok"
        if run.changed:
            counts += f" · {run.changed} changed"
        if run.failures:
            counts += f" · <em>{run.failures} failed</em>"
        error = f'<span class="detail">{_e(redact(run.error))}</span>' if run.error else ""
        links.append(f'<a class="run {"bad" if run.failed else "good"}" href="{href}{_e(run.run_uid)}">'
                     f"<b>{_e(run.requested)}</b>\n{counts}\nof {run.total} · {ago(run.finished_at, now)}{error}</a>")
    return "\n".join(links)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("flageemonitor.server.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc, redact=lambda v: redact(v) if isinstance(v, str) else v, digest=short_digest)
    env.globals.update(ago=ago, proxy_rows=proxy_rows, version=__version__)
    return env


def page(template: str, context: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = environment().get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


@cache
def stylesheet() -> bytes:
    return (resources.files("flageemonitor.server.web") / "static" / "fleet.css").read_bytes()
