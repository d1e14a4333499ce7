"""The fleet pages in a real browser (Debian's chromium) against a real server process.

What a person does: sign in, see a proxy that checked in through the real ingest endpoint with
a real token, see the failed hosts of a real run (the sshd persona fleet, `flageemonitor run
--json`, posted through the endpoint), watch a silent proxy turn late then offline, and meet
the CSRF and lockout guards. Screenshots go to the artifact directory printed after the run.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flageemonitor.core.fleet_contract import run_report_body
from tests.fixtures.browser import BrowserPage
from tests.fixtures.server import DEFAULT_CONFIG, ControlPlane, ControlPlaneFactory
from tests.fixtures.sshd import FleetRun
from tests.server.fleet_bodies import checkin
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]
PASSWORD = "a-long-browser-password"


def _plane(factory: ControlPlaneFactory, heartbeat: int) -> ControlPlane:
    plane = factory(config={**DEFAULT_CONFIG, "PARAM_HEARTBEAT_INTERVAL": heartbeat})
    created = plane.admin("admin", "create", "alice", input=PASSWORD + "\n")  # the real CLI, password on stdin
    assert created.returncode == 0, created.stderr
    return plane


def _check_in(plane: ControlPlane, proxy: str, **fields: Any) -> None:
    r = httpx.post(plane.url + "/api/ingest/bot/checkin", json=checkin(proxy, **fields), headers=plane.headers())
    assert r.status_code == 200, r.text


def _sign_in(bp: BrowserPage, plane: ControlPlane, password: str = PASSWORD) -> None:
    bp.page.goto(plane.url + "/fleet")
    assert "/login" in bp.page.url  # sent to sign in first
    bp.page.fill("input[name=username]", "alice")
    bp.page.fill("input[name=password]", password)
    bp.page.click("button[type=submit]")


def _row_text(bp: BrowserPage, proxy: str) -> str:
    text: str = bp.page.locator("tr", has_text=proxy).first.inner_text()
    return text


def test_a_person_signs_in_and_sees_a_checked_in_proxy_and_the_failed_hosts_of_a_real_run(
    control_plane_factory: ControlPlaneFactory, fleet_run: FleetRun, browser_page: BrowserPage
) -> None:
    plane = _plane(control_plane_factory, heartbeat=60)
    proxy = str(uuid.uuid4())
    _check_in(plane, proxy, hostname="store-proxy-01", image_version="0.1.0", config_version=1)
    fleet_run.write_config(ssh={"timeout": 5, "command_timeout": 5, "host_key_policy": "pin"})
    result = fleet_run("run", "test_endpoint_connection", "--json")
    assert result.returncode == 1, result.stderr  # some personas fail, as they should
    body = run_report_body(result.report(), proxy_id=proxy, run_id=str(uuid.uuid4()), trigger="schedule",
                           finished_at=datetime.now(UTC))
    posted = httpx.post(plane.url + "/api/ingest/bot/runs", json=body, headers=plane.headers())
    assert posted.status_code == 201, posted.text
    failed = {h["host"]: h["status"] for h in body["hosts"] if h["status"] in ("auth_failed", "unreachable")}
    assert failed == {"FLEET-LOJA001-PDV207": "auth_failed", "FLEET-LOJA001-PDV208": "unreachable"}

    bp = browser_page
    _sign_in(bp, plane)
    bp.page.wait_for_url(plane.url + "/fleet")
    row = _row_text(bp, proxy)
    assert "store-proxy-01" in row and "online" in row and "latest" in row
    assert "test_endpoint_connection" in row and "failed" in row
    assert plane.token not in bp.page.content()
    bp.shot("fleet")

    bp.page.click(f"tr:has-text('{proxy}') a.run")
    bp.page.wait_for_url("**/runs/**")
    first_rows = bp.page.locator("table.hosts tbody tr").all_inner_texts()
    assert all(any(s in r for s in ("auth_failed", "unreachable", "timeout", "failed")) for r in first_rows[:3])
    assert any("FLEET-LOJA001-PDV207" in r and "auth_failed" in r for r in first_rows)
    bp.shot("run")

    bp.page.goto(plane.url + f"/fleet/{plane.rede}?store=LOJA001&status=failures")
    endpoints = bp.page.locator("table.endpoints tbody").inner_text()
    assert "FLEET-LOJA001-PDV207" in endpoints and "FLEET-LOJA001-PDV208" in endpoints
    assert "FLEET-LOJA001-PDV201" not in endpoints  # an ok endpoint is filtered out
    bp.shot("network-failures")
    bp.page.set_viewport_size({"width": 390, "height": 844})  # a phone: the tables become cards
    bp.page.goto(plane.url + "/fleet")
    width = bp.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide on a 390 px screen"
    bp.shot("fleet-phone")


def test_a_silent_proxy_turns_late_then_offline(
    control_plane_factory: ControlPlaneFactory, browser_page: BrowserPage
) -> None:
    plane = _plane(control_plane_factory, heartbeat=2)  # online <= 4 s, late <= 12 s, then offline
    proxy = str(uuid.uuid4())
    bp = browser_page
    _sign_in(bp, plane)
    bp.page.wait_for_url(plane.url + "/fleet")

    def state_after_reload() -> str:
        bp.page.reload()
        return _row_text(bp, proxy).split()[0] if bp.page.locator("tr", has_text=proxy).count() else ""

    def online_right_after_check_in() -> bool:
        _check_in(plane, proxy, hostname="silent-proxy")
        return state_after_reload() == "online"  # a slow page load may already miss the window: check in again

    wait_until(online_right_after_check_in, 60, "the proxy shown online after a check-in", interval=0.5)
    bp.shot("online")
    seen: list[str] = []

    def reaches(state: str) -> bool:
        current = state_after_reload()
        if not seen or seen[-1] != current:
            seen.append(current)
        return current == state

    wait_until(lambda: reaches("late"), 60, "the proxy shown late")
    bp.shot("late")
    wait_until(lambda: reaches("offline"), 60, "the proxy shown offline")
    bp.shot("offline")
    assert seen[-2:] == ["late", "offline"]
    assert bp.page.locator("tr", has_text=proxy).locator(".badge.offline").count() == 1


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second origin (another loopback address) serving pages from a directory: the attacker's site."""
    root = tmp_path / "site"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.2:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_csrf_guards_and_account_lockout_in_the_browser(
    control_plane_factory: ControlPlaneFactory, browser_page: BrowserPage, other_site: tuple[str, Path]
) -> None:
    plane = _plane(control_plane_factory, heartbeat=60)
    bp = browser_page

    # a sign-in form whose token was tampered with is refused and opens nothing
    bp.page.goto(plane.url + "/login")
    bp.page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
    bp.page.fill("input[name=username]", "alice")
    bp.page.fill("input[name=password]", PASSWORD)
    bp.page.click("button[type=submit]")
    assert "not accepted" in bp.page.inner_text("p.error")
    assert not [c for c in bp.page.context.cookies() if c["name"] == "fm_session"]
    bp.shot("csrf-refused")

    # signed in, a page on another site that posts to /logout does not sign the person out
    _sign_in(bp, plane)
    bp.page.wait_for_url(plane.url + "/fleet")
    [session] = [c for c in bp.page.context.cookies() if c["name"] == "fm_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    site, root = other_site
    (root / "evil.html").write_text(
        f'<form id="f" method="post" action="{plane.url}/logout"><input name="csrf_token" value="guess"></form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    bp.page.goto(site + "/evil.html")
    bp.page.wait_for_url(lambda url: url.startswith(plane.url))
    bp.page.goto(plane.url + "/fleet")
    assert bp.page.url == plane.url + "/fleet" and "alice" in bp.page.inner_text("header")
    bp.page.click("header button[type=submit]")  # the real sign-out form works
    bp.page.wait_for_url("**/login")
    bp.page.goto(plane.url + "/fleet")
    assert "/login" in bp.page.url

    # five wrong passwords lock the account; then the right one is refused too
    for _ in range(5):
        bp.page.fill("input[name=username]", "alice")
        bp.page.fill("input[name=password]", "not-the-password")
        bp.page.click("button[type=submit]")
        bp.page.wait_for_load_state()
    assert "locked until" in bp.page.inner_text("p.error")
    _sign_in(bp, plane)
    assert "locked until" in bp.page.inner_text("p.error")
    assert "/login" in bp.page.url
    bp.shot("locked")
    audit = json.dumps(plane.admin("audit", "list", "--json").stdout)
    assert "person.locked" in audit
