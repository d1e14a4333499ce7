"""`GET /api/ingest/bot/config`: tokens, networks, ETags (on SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta

from flageemonitor.server.core.db import session_scope
from flageemonitor.server.services import clients, networks, tokens
from tests.server.conftest import Api

CONFIG = "/api/ingest/bot/config"


def test_config_is_served_with_network_and_version_for_x_bot_token(api: Api) -> None:
    r = api.client.get(CONFIG, headers=api.headers())
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["PARAM_REDE"] == api.plane.rede
    assert body["CONFIG_VERSION"] == 1
    assert body["PARAM_PROVIDER"] == "arius"
    assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"')
    assert r.headers["x-config-version"] == "1"


def test_config_accepts_authorization_bearer(api: Api) -> None:
    r = api.client.get(CONFIG, headers={"Authorization": f"Bearer {api.plane.token}"})
    assert r.status_code == 200
    assert r.json()["PARAM_REDE"] == api.plane.rede


def test_config_etag_gives_304_until_a_new_version_is_stored(api: Api) -> None:
    first = api.client.get(CONFIG, headers=api.headers())
    etag = first.headers["etag"]
    again = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    weak = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    api.plane.set_config({"PARAM_PROVIDER": "zanthus"})
    changed = api.client.get(CONFIG, headers={**api.headers(), "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()["CONFIG_VERSION"] == 2
    assert changed.json()["PARAM_PROVIDER"] == "zanthus"


def test_config_without_token_is_401_naming_both_headers(api: Api) -> None:
    r = api.client.get(CONFIG)
    assert r.status_code == 401
    assert r.json()["error"] == "token_missing"
    assert "X-Bot-Token" in r.json()["message"] and "Bearer" in r.json()["message"]


def test_config_with_malformed_or_unknown_token_is_401_with_actionable_message(api: Api) -> None:
    unknown = "fmt_" + "A" * 43
    for token in ("not-a-token", "fmt_short", unknown, api.plane.token + "x"):
        r = api.client.get(CONFIG, headers=api.headers(token))
        assert r.status_code == 401, token
        assert r.json() == {
            "error": "token_rejected",
            "message": "token rejected: check the client token and network (FLAGEEMONITOR_TOKEN / --rede)",
        }
    basic = api.client.get(CONFIG, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_revoked_token_is_403(api: Api) -> None:
    api.plane.revoke_token(api.plane.token_id)
    r = api.client.get(CONFIG, headers=api.headers())
    assert r.status_code == 403
    assert r.json()["error"] == "token_revoked"


def test_expired_token_is_403(api: Api) -> None:
    token = api.plane.issue_token(expires_at=datetime.now(UTC) - timedelta(minutes=1))
    r = api.client.get(CONFIG, headers=api.headers(token))
    assert r.status_code == 403
    assert r.json()["error"] == "token_expired"
    later = api.plane.issue_token(expires_at=datetime.now(UTC) + timedelta(days=1))
    assert api.client.get(CONFIG, headers=api.headers(later)).status_code == 200


def test_token_without_config_scope_is_403(api: Api) -> None:
    token = api.plane.issue_token(scopes=["bootstrap:read"])
    r = api.client.get(CONFIG, headers=api.headers(token))
    assert r.status_code == 403
    assert "config:read" in r.json()["message"]
    admin = api.plane.issue_token(scopes=["admin"])
    assert api.client.get(CONFIG, headers=api.headers(admin)).status_code == 200


def test_token_for_one_network_asking_for_another_is_403(api: Api) -> None:
    with api.plane.session() as s:
        networks.add(s, api.plane.client, "OTHERNET", "test")
        clients.add(s, "someone-else", "test")
        networks.add(s, "someone-else", "FOREIGN", "test")
    api.plane.set_config({}, network="OTHERNET")
    api.plane.set_config({}, network="FOREIGN")
    for rede in ("OTHERNET", "FOREIGN", "NOSUCHNET"):
        r = api.client.get(CONFIG, params={"rede": rede}, headers=api.headers())
        assert r.status_code == 403, rede
        assert r.json()["error"] == "network_denied"
        assert rede in r.json()["message"]
    own = api.client.get(CONFIG, params={"rede": api.plane.rede}, headers=api.headers())
    assert own.status_code == 200


def test_client_wide_token_needs_rede_when_the_client_has_several_networks(api: Api) -> None:
    with api.plane.session() as s:
        networks.add(s, api.plane.client, "SECOND", "test")
    api.plane.set_config({"max_threads": 7}, network="SECOND")
    wide = api.plane.issue_token(network=None)
    ambiguous = api.client.get(CONFIG, headers=api.headers(wide))
    assert ambiguous.status_code == 400
    assert "?rede=" in ambiguous.json()["message"]
    second = api.client.get(CONFIG, params={"rede": "SECOND"}, headers=api.headers(wide))
    assert second.status_code == 200
    assert second.json()["PARAM_REDE"] == "SECOND"
    assert second.json()["max_threads"] == 7
    first = api.client.get(CONFIG, params={"rede": api.plane.rede}, headers=api.headers(wide))
    assert first.json()["PARAM_REDE"] == api.plane.rede


def test_network_without_config_is_404_telling_the_operator_what_to_run(api: Api) -> None:
    with api.plane.session() as s:
        networks.add(s, api.plane.client, "EMPTYNET", "test")
    token = api.plane.issue_token(network="EMPTYNET")
    r = api.client.get(CONFIG, headers=api.headers(token))
    assert r.status_code == 404
    assert "config set --network EMPTYNET" in r.json()["message"]


def test_failed_authentications_are_rate_limited_per_address(api: Api) -> None:
    bad = "fmt_" + "B" * 43
    for _ in range(api.settings.auth_failure_limit):
        assert api.client.get(CONFIG, headers=api.headers(bad)).status_code == 401
    limited = api.client.get(CONFIG, headers=api.headers(bad))
    assert limited.status_code == 429
    # when the estimate lifts: the failures fade through the next window as if spread over theirs,
    # so up to half a failure's share of a window past its end (a burst at a window's start)
    limit, window = api.settings.auth_failure_limit, api.settings.auth_failure_window
    assert 1 <= int(limited.headers["retry-after"]) <= math.ceil(window * (1 + 0.5 / limit)) + 1
    assert limited.json()["error"] == "rate_limited"
    assert api.client.get(CONFIG, headers=api.headers("not-even-a-token")).status_code == 429
    # a valid token from the same address is never refused for the failures of others
    assert api.client.get(CONFIG, headers=api.headers()).status_code == 200
    # another address is not affected: the counter is per client address
    from tests.server.conftest import make_api

    with make_api(api.plane, address="198.51.100.9", auth_failure_limit=5) as other:
        assert other.get(CONFIG, headers=api.headers()).status_code == 200


def test_missing_token_does_not_count_as_a_failed_guess(api: Api) -> None:
    for _ in range(api.settings.auth_failure_limit + 2):
        assert api.client.get(CONFIG).status_code == 401
    assert api.client.get(CONFIG, headers=api.headers()).status_code == 200


def test_successful_use_records_last_used_time(api: Api) -> None:
    with api.plane.session() as s:
        assert tokens.of_client(s, api.plane.client)[0].last_used_at is None
    assert api.client.get(CONFIG, headers=api.headers()).status_code == 200
    with api.plane.session() as s:
        assert tokens.of_client(s, api.plane.client)[0].last_used_at is not None


def test_revocation_and_scope_changes_apply_to_an_already_cached_token(api: Api) -> None:
    token, token_id = api.plane.issue_token_with_id()
    for _ in range(3):  # warm the worker's lookup cache
        assert api.client.get(CONFIG, headers=api.headers(token)).status_code == 200
    api.plane.revoke_token(token_id)
    assert api.client.get(CONFIG, headers=api.headers(token)).status_code == 403
    assert api.client.get(CONFIG, headers=api.headers()).status_code == 200


def test_new_network_for_a_client_wide_token_is_seen_after_caching(api: Api) -> None:
    wide = api.plane.issue_token(network=None)
    assert api.client.get(CONFIG, headers=api.headers(wide)).status_code == 200
    with api.plane.session() as s:
        networks.add(s, api.plane.client, "LATER", "test")
    api.plane.set_config({}, network="LATER")
    assert api.client.get(CONFIG, headers=api.headers(wide)).status_code == 400
    assert api.client.get(CONFIG, params={"rede": "LATER"}, headers=api.headers(wide)).json()["PARAM_REDE"] == "LATER"


def _memory_answers(api: Api) -> float:
    text = api.client.get("/metrics").text
    return sum(float(v) for v in re.findall(r"^flageemonitor_config_poll_memory_answers_total\{[^}]*\} (\S+)$",
                                            text, re.MULTILINE))


def test_a_change_committed_in_the_servers_own_process_is_seen_by_its_next_poll(api: Api) -> None:
    """On PostgreSQL too, without waiting for the notification: the committing process tells its own
    change watch (the admin API's case); the change here is not made through the fixture's helpers,
    which would wait for the notification."""
    token, token_id = api.plane.issue_token_with_id()
    deadline = time.monotonic() + 30  # a PostgreSQL watch connects after the application starts
    while True:
        before = _memory_answers(api)
        assert api.client.get(CONFIG, headers=api.headers(token)).status_code == 200
        if _memory_answers(api) > before:
            break
        assert time.monotonic() < deadline, "the poll was never answered from memory"
        time.sleep(0.05)
    with session_scope(api.client.app.state.sessionmaker) as s:  # type: ignore[attr-defined]
        tokens.revoke(s, token_id, "test")
    r = api.client.get(CONFIG, headers=api.headers(token))
    assert r.status_code == 403 and r.json()["error"] == "token_revoked"
