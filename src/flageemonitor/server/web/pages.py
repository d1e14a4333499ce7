"""The fleet pages and sign-in: `/login`, `/logout`, `/fleet`, `/fleet/<network>`, run pages.

Only a signed-in person's session cookie opens a page; client tokens and admin tokens never do
(a request without a session is sent to `/login`). Every POST is checked for CSRF before
anything else. Pages carry `Server-Timing: app;dur=<ms>, cpu;dur=<ms>` (the server's time for
the page, and the processor time of its query and render).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from flageemonitor.server.api.body import read_limited
from flageemonitor.server.api.deps import run_db
from flageemonitor.server.api.errors import ApiError
from flageemonitor.server.core import security
from flageemonitor.server.core.config import Settings
from flageemonitor.server.errors import Invalid, NotFound
from flageemonitor.server.models import WebSession
from flageemonitor.server.services import audit, auth_limits, fleet_views, people
from flageemonitor.server.web import sessions
from flageemonitor.server.web.render import PAGE_HEADERS, page, stylesheet

router = APIRouter(include_in_schema=False)
FORM_LIMIT = 16 * 1024
LOGIN_CSRF_AGE = 3600
CSRF_REFUSED = "This form expired or came from another site, so it was not accepted. Please try again."


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    try:
        raw = await read_limited(request, FORM_LIMIT)
    except ApiError:
        return {}
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}
    return dict(pairs)


def _login_page(request: Request, *, error: str = "", username: str = "", next_path: str = "/fleet",
                status: int = 200, headers: dict[str, str] | None = None) -> Response:
    token = security.new_secret()
    response = page("login.html", {"error": error, "username": username[:64], "next": sessions.safe_next(next_path),
                                   "login_csrf": token}, status, headers)
    sessions.set_cookie(response, request, sessions.LOGIN_CSRF_COOKIE, token, max_age=LOGIN_CSRF_AGE,
                        samesite="strict")
    return response


@router.get("/")
async def root() -> Response:
    return RedirectResponse("/fleet", status_code=303)


@router.get("/static/fleet.css")
async def css() -> Response:
    return Response(stylesheet(), media_type="text/css", headers={"Cache-Control": "public, max-age=3600",
                                                                  "X-Content-Type-Options": "nosniff"})


@router.get("/login")
async def login_form(request: Request, next: str = "/fleet") -> Response:
    return _login_page(request, next_path=next)


@router.post("/login")
async def login(request: Request) -> Response:
    settings = _settings(request)
    form = await _form(request)
    username = form.get("username", "").strip()
    next_path = sessions.safe_next(form.get("next"))
    if not sessions.same_origin(request, settings) or not sessions.tokens_match(
        request.cookies.get(sessions.LOGIN_CSRF_COOKIE), form.get("csrf_token")
    ):
        return _login_page(request, error=CSRF_REFUSED, username=username, next_path=next_path, status=403)
    password = form.get("password", "")
    address = request.client.host if request.client else "unknown"
    state = request.app.state

    def attempt() -> tuple[str, object]:
        now = datetime.now(UTC)
        clock = time.time()
        with state.sessionmaker() as s:
            failed = auth_limits.failures(s, address, clock, settings.auth_failure_window)
            if failed.limited(settings.auth_failure_limit, clock, settings.auth_failure_window):
                return "rate_limited", failed.retry_after(settings.auth_failure_limit, clock,
                                                          settings.auth_failure_window)
            try:
                person = people.authenticate(s, username, password, now, attempts=settings.login_lockout_attempts,
                                             lock_seconds=settings.login_lockout_seconds)
            except people.LoginRefused as refused:
                s.commit()
                auth_limits.record_failure(s, address, clock, settings.auth_failure_window)
                return ("locked", refused.locked_until) if refused.locked_until else ("refused", None)
            clear, _row = people.open_session(s, person, now, settings.session_hours)
            audit.record(s, f"web:{person.username}", "person.login", f"person:{person.username}",
                         f"address={address}")
            s.commit()
            return "ok", clear

    outcome, value = await run_db(request, attempt)
    if outcome == "rate_limited":
        return _login_page(request, error=f"Too many failed sign-ins from this address; try again in {value} s.",
                           username=username, next_path=next_path, status=429, headers={"Retry-After": str(value)})
    if outcome == "locked":
        assert isinstance(value, datetime)
        return _login_page(request, error=f"Too many failed sign-ins: this account is locked until "
                           f"{value.strftime('%H:%M UTC')}.", username=username, next_path=next_path, status=403)
    if outcome == "refused":
        return _login_page(request, error="Wrong username or password.", username=username, next_path=next_path,
                           status=401)
    response = RedirectResponse(next_path, status_code=303)
    sessions.set_cookie(response, request, sessions.SESSION_COOKIE, str(value),
                        max_age=int(settings.session_hours * 3600))
    sessions.clear_cookie(response, sessions.LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    settings = _settings(request)
    form = await _form(request)
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    state = request.app.state

    if cookie is None:  # nothing to end (and a cross-site POST carries no cookie: never clear one then)
        return RedirectResponse("/login", status_code=303)

    def end() -> bool:
        with state.sessionmaker() as s:
            current = people.session_for(s, cookie, datetime.now(UTC))
            if current is None:
                return True
            if not sessions.same_origin(request, settings) or not sessions.tokens_match(
                current.csrf_token, form.get("csrf_token")
            ):
                return False
            people.close_session(s, cookie or "")
            s.commit()
            return True

    if not await run_db(request, end):
        return page("message.html", {"heading": "Not signed out", "message": CSRF_REFUSED}, 403)
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_cookie(response, sessions.SESSION_COOKIE)
    return response


Build = Callable[[Session, WebSession, datetime], Response]


async def _signed_in(request: Request, build: Build) -> Response:
    """Run `build` for a signed-in person; send anyone else to the sign-in page."""
    start = time.perf_counter()
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    state = request.app.state

    def work() -> tuple[Response | None, float]:
        cpu = time.thread_time()
        now = datetime.now(UTC)
        with state.sessionmaker() as s:
            current = people.session_for(s, cookie, now)
            if current is None:
                return None, 0.0
            try:
                return build(s, current, now), time.thread_time() - cpu
            except NotFound as exc:
                shown = page("message.html", _base(current, now) | {"heading": "Not found", "message": str(exc)}, 404)
                return shown, time.thread_time() - cpu

    response, cpu = await run_db(request, work)
    if response is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303, headers=PAGE_HEADERS)
    # app: wall time in the server; cpu: processor time of the query and render (what load cannot inflate)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}, cpu;dur={cpu * 1000:.1f}"
    return response


def _base(current: WebSession, now: datetime) -> dict[str, object]:
    return {"who": current.person.username, "csrf": current.csrf_token, "now": now}


@router.get("/fleet")
async def fleet(request: Request) -> Response:
    def build(s: Session, current: WebSession, now: datetime) -> Response:
        networks = fleet_views.overview(s, now)
        proxies = [p for n in networks for p in n.proxies]
        totals = {"proxies": len(proxies), **{st: sum(1 for p in proxies if p.state == st)
                                              for st in ("online", "late", "offline")}}
        return page("fleet.html", _base(current, now) | {"networks": networks, "totals": totals})

    return await _signed_in(request, build)


@router.get("/fleet/{code}")
async def network(request: Request, code: str, store: str = "", status: str = "", action: str = "") -> Response:
    def build(s: Session, current: WebSession, now: datetime) -> Response:
        error = ""
        try:
            store_no = fleet_views.parse_store(store)
        except Invalid as exc:
            store_no, error = None, str(exc)
        wanted = status if status in fleet_views.STATUS_FILTERS else ""
        data = fleet_views.network_page(s, code, now, store=store_no, status=wanted or None,
                                        action=action[:100] or None)
        return page("network.html", _base(current, now) | {
            "net": data.network, "endpoints": data.endpoints, "endpoints_total": data.endpoints_total,
            "actions": data.actions, "runs": data.runs, "store_text": store[:20], "status": wanted,
            "action": action[:100], "status_filters": fleet_views.STATUS_FILTERS, "filter_error": error,
        })

    return await _signed_in(request, build)


@router.get("/fleet/{code}/runs/{run_uid}")
async def run_detail(request: Request, code: str, run_uid: str) -> Response:
    def build(s: Session, current: WebSession, now: datetime) -> Response:
        data = fleet_views.run_page(s, code, run_uid)
        finished = data.run.finished_at
        return page("run.html", _base(current, now) | {
            "network": data.network, "run": data.run, "proxy_uid": data.proxy_uid, "hostname": data.hostname,
            "hosts": data.hosts, "finished": finished if finished.tzinfo else finished.replace(tzinfo=UTC),
        })

    return await _signed_in(request, build)
