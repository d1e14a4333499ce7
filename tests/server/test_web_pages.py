"""Sign-in, sessions, CSRF, lockout and the fleet pages, in-process on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from flageemonitor.server.errors import Invalid
from flageemonitor.server.models import Proxy
from flageemonitor.server.services.fleet_views import parse_store, proxy_state
from tests.server.conftest import Api, make_api
from tests.server.fleet_bodies import checkin, host, run_report
from tests.server.web_login import PASSWORD, admin_token, create_person, csrf_of, sign_in

CHECKIN = "/api/ingest/bot/checkin"
RUNS = "/api/ingest/bot/runs"


def test_proxy_state_follows_the_heartbeat_interval() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert proxy_state(now - timedelta(seconds=120), 60, now) == "online"
    assert proxy_state(now - timedelta(seconds=121), 60, now) == "late"
    assert proxy_state(now - timedelta(seconds=360), 60, now) == "late"
    assert proxy_state(now - timedelta(seconds=361), 60, now) == "offline"
    assert proxy_state((now - timedelta(seconds=5)).replace(tzinfo=None), 2, now) == "late"  # naive means UTC


def test_store_filter_reads_the_forms_people_type() -> None:
    assert [parse_store(v) for v in ("LOJA001", "loja1", "001", "7", "", None)] == [1, 1, 1, 7, None, None]
    with pytest.raises(Invalid):
        parse_store("LOJA-1; drop")


def test_pages_need_a_signed_in_person_and_never_open_with_a_token(api: Api) -> None:
    admin = admin_token(api.plane)
    for headers in ({}, api.headers(), {"Authorization": f"Bearer {api.plane.token}"},
                    {"Authorization": f"Bearer {admin}"}):
        r = api.client.get("/fleet/TESTNET", headers=headers, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=%2Ffleet%2FTESTNET"
        assert "TESTNET" not in r.text


def test_sign_in_sets_a_safe_session_cookie_and_sign_out_ends_it(api: Api) -> None:
    create_person(api.plane)
    r = sign_in(api.client, next="/fleet/TESTNET")
    assert r.status_code == 303 and r.headers["location"] == "/fleet/TESTNET"
    cookie = r.headers["set-cookie"]
    assert "fm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP, no trusted proxy
    page = api.client.get("/fleet")
    assert page.status_code == 200 and "alice" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    timing = dict(part.strip().split(";dur=") for part in page.headers["server-timing"].split(","))
    assert float(timing["app"]) > 0 and float(timing["cpu"]) > 0
    # sign-out needs the session's CSRF token
    assert api.client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert api.client.get("/fleet", follow_redirects=False).status_code == 200
    r = api.client.post("/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert api.client.get("/fleet", follow_redirects=False).status_code == 303


def test_an_open_redirect_after_sign_in_is_refused(api: Api) -> None:
    create_person(api.plane)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = sign_in(api.client, next=target)
        assert r.headers["location"] == "/fleet"


def test_cookie_is_secure_over_https_from_a_trusted_proxy_only(api: Api) -> None:
    create_person(api.plane)
    trusted = make_api(api.plane, address="10.9.8.7", trusted_proxies=("10.9.8.0/24",))
    untrusted = make_api(api.plane, address="192.0.2.50", trusted_proxies=("10.9.8.0/24",))
    with trusted as t, untrusted as u:
        t.headers["X-Forwarded-Proto"] = "https"
        u.headers["X-Forwarded-Proto"] = "https"
        assert "Secure" in sign_in(t).headers["set-cookie"]
        assert "Secure" not in sign_in(u).headers["set-cookie"]


def test_sign_in_without_the_forms_token_or_from_another_site_is_refused(api: Api) -> None:
    create_person(api.plane)
    token = csrf_of(api.client.get("/login").text)
    base = {"username": "alice", "password": PASSWORD}
    for data, headers in (
        (base, {}),
        ({**base, "csrf_token": "x" + token[1:]}, {}),
        ({**base, "csrf_token": token}, {"Origin": "https://evil.example"}),
        ({**base, "csrf_token": token}, {"Sec-Fetch-Site": "cross-site"}),
    ):
        r = api.client.post("/login", data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403, (data, headers)
        assert "not accepted" in r.text and "fm_session=" not in r.headers.get("set-cookie", "")
    ok = api.client.post("/login", data={**base, "csrf_token": csrf_of(api.client.get("/login").text)},
                         headers={"Origin": "http://cp.test"}, follow_redirects=False)
    assert ok.status_code == 303


def test_failed_sign_ins_lock_the_account_until_a_new_password(api: Api) -> None:
    create_person(api.plane)
    with make_api(api.plane, auth_failure_limit=100) as client:
        for _ in range(4):
            r = sign_in(client, password="wrong-password-1")
            assert r.status_code == 401 and "Wrong username or password" in r.text
        r = sign_in(client, password="wrong-password-1")
        assert r.status_code == 403 and "locked until" in r.text
        r = sign_in(client)  # the right password does not open a locked account
        assert r.status_code == 403 and "locked until" in r.text
        assert "fm_session=" not in r.headers.get("set-cookie", "")
        changed = api.plane.admin("admin", "password", "alice", input="another-long-pass\n")
        assert changed.returncode == 0, changed.stderr
        assert sign_in(client, password="another-long-pass").status_code == 303
    audit = api.plane.admin("audit", "list").stdout
    assert "person.locked" in audit and "person.login" in audit


def test_failed_sign_ins_from_one_address_are_rate_limited(api: Api) -> None:
    create_person(api.plane)
    # 5 failures per address in a window far longer than the test, so no window boundary falls inside it
    with make_api(api.plane, auth_failure_limit=5, auth_failure_window=10**7) as client:
        for i in range(5):
            assert sign_in(client, name=f"nobody{i}", password="wrong-password-1").status_code == 401
        r = sign_in(client)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "fm_session=" not in r.headers.get("set-cookie", "")


def test_fleet_pages_show_proxies_runs_and_endpoints_escaped_and_failures_first(api: Api) -> None:
    create_person(api.plane)
    api.plane.set_config({"PARAM_PROVIDER": "arius", "PARAM_HEARTBEAT_INTERVAL": 30})  # version 2
    quiet, noisy = str(uuid.uuid4()), str(uuid.uuid4())
    hostile = "<script>alert(1)</script>"
    assert api.client.post(CHECKIN, json=checkin(quiet, hostname="proxy-quiet", config_version=2),
                           headers=api.headers()).status_code == 200
    assert api.client.post(CHECKIN, json=checkin(noisy, hostname=hostile, config_version=1, image_version="<i>9</i>",
                                                 last_error="spool: <img src=x onerror=alert(2)>"),
                           headers=api.headers()).status_code == 200
    good = run_report(quiet, [host("TESTNET-LOJA001-PDV201")])
    bad = run_report(noisy, [host("TESTNET-LOJA002-PDV201", "ok"),
                             host("TESTNET-LOJA002-PDV202", "auth_failed", "Permission denied <b>x</b>")])
    for body in (good, bad):
        assert api.client.post(RUNS, json=body, headers=api.headers()).status_code == 201
    with api.plane.session() as s:  # the quiet proxy was last seen 5 intervals ago
        s.execute(update(Proxy).where(Proxy.proxy_uid == quiet)
                  .values(last_seen=datetime.now(UTC) - timedelta(seconds=150)))
    assert sign_in(api.client).status_code == 303

    fleet = api.client.get("/fleet").text
    assert hostile not in fleet and "&lt;script&gt;alert(1)&lt;/script&gt;" in fleet
    assert "<i>9" not in fleet and "&lt;i&gt;9&lt;/i&gt;" in fleet  # every text of a proxy row is escaped
    assert "<img" not in fleet and "spool: &lt;img src=x onerror=alert(2)&gt;" in fleet
    assert fleet.index(noisy) < fleet.index(quiet)  # failures first
    assert "1 failed" in fleet and "heartbeat 30 s" in fleet
    assert "badge late" in fleet and "v2 stored" in fleet and api.plane.token not in fleet

    net = api.client.get("/fleet/TESTNET").text
    assert net.index("TESTNET-LOJA002-PDV202") < net.index("TESTNET-LOJA001-PDV201")
    assert "Permission denied &lt;b&gt;x&lt;/b&gt;" in net
    only_store1 = api.client.get("/fleet/TESTNET", params={"store": "LOJA001"}).text
    assert "TESTNET-LOJA001-PDV201" in only_store1 and "TESTNET-LOJA002-PDV202" not in only_store1
    failures = api.client.get("/fleet/TESTNET", params={"status": "failures"}).text
    assert "TESTNET-LOJA002-PDV202" in failures and "TESTNET-LOJA002-PDV201</b>" not in failures
    assert "use LOJA001" in api.client.get("/fleet/TESTNET", params={"store": "nope!"}).text

    run = api.client.get(f"/fleet/TESTNET/runs/{bad['run_id']}")
    assert run.status_code == 200
    assert run.text.index("TESTNET-LOJA002-PDV202") < run.text.index("TESTNET-LOJA002-PDV201")
    missing = api.client.get("/fleet/TESTNET/runs/nope")
    assert missing.status_code == 404 and "pruned" in missing.text
    assert api.client.get("/fleet/NOPE").status_code == 404
