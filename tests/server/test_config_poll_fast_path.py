"""The config poll answered from memory: two real server processes on one SQLite file.

Every change is made by a third process (this test, through the service layer, as the CLI does),
and the very next request to each server must see it: no sleep, no retry.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.server import ControlPlane

pytestmark = pytest.mark.slow


def _get(url: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(timeout=10) as client:
        return client.get(url, **kwargs)


def _memory_answers(cp: ControlPlane, status: int) -> float:
    text = _get(cp.url + "/metrics").text
    m = re.search(rf'^flageemonitor_config_poll_memory_answers_total{{status="{status}"}} (\S+)$', text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def _headers_but_date(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k != "date"}


@pytest.fixture
def two_servers(control_plane_factory: Callable[..., ControlPlane]) -> tuple[ControlPlane, ControlPlane]:
    a = control_plane_factory()
    b = control_plane_factory(database_url=a.database_url, seed=False,
                              env={"FLAGEEMONITOR_SECRETS_KEY_FILE": str(a.key_file)})
    b.rede, b.client, b.token = a.rede, a.client, a.token
    return a, b


def _etag_warm(cp: ControlPlane, token: str) -> str:
    """A 200, then 304s until one is answered from memory; returns the ETag."""
    first = _get(cp.config_url, headers=cp.headers(token))
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    before = _memory_answers(cp, 304)
    for _ in range(3):
        assert _get(cp.config_url, headers={**cp.headers(token), "If-None-Match": etag}).status_code == 304
    assert _memory_answers(cp, 304) > before, "the conditional poll never took the fast path"
    return etag


def test_revocation_and_new_versions_reach_every_process_on_the_next_request(
    two_servers: tuple[ControlPlane, ControlPlane],
) -> None:
    a, b = two_servers
    token, token_id = a.issue_token_with_id()
    etags = {cp.url: _etag_warm(cp, token) for cp in (a, b)}
    assert len(set(etags.values())) == 1

    version = a.set_config({"max_threads": 7})
    for cp in (a, b):
        r = _get(cp.config_url, headers={**cp.headers(token), "If-None-Match": etags[cp.url]})
        assert r.status_code == 200 and r.json()["max_threads"] == 7
        assert r.headers["x-config-version"] == str(version) and r.headers["etag"] != etags[cp.url]
        etags[cp.url] = r.headers["etag"]
    for cp in (a, b):  # the new version is remembered again: 304 from memory
        before = _memory_answers(cp, 304)
        assert _get(cp.config_url, headers={**cp.headers(token), "If-None-Match": etags[cp.url]}).status_code == 304
        assert _memory_answers(cp, 304) == before + 1

    a.revoke_token(token_id)
    for cp in (a, b):
        r = _get(cp.config_url, headers={**cp.headers(token), "If-None-Match": etags[cp.url]})
        assert r.status_code == 403 and r.json()["error"] == "token_revoked"
    for cp in (a, b):  # the other token of the network is still served
        assert _get(cp.config_url, headers=cp.headers(a.token)).status_code == 200


def test_memory_answers_carry_the_full_paths_headers_and_bodies(two_servers: tuple[ControlPlane, ControlPlane]) -> None:
    a, _ = two_servers
    etag = _etag_warm(a, a.token)
    conditional = {**a.headers(a.token), "If-None-Match": etag}
    before = _memory_answers(a, 304)
    fast = _get(a.config_url, headers=conditional)
    assert _memory_answers(a, 304) == before + 1
    full = _get(a.config_url, params={"rede": a.rede, "other": "1"}, headers=conditional)  # a query: full path
    assert _memory_answers(a, 304) == before + 1
    assert (fast.status_code, full.status_code) == (304, 304)
    assert _headers_but_date(fast) == _headers_but_date(full) and fast.content == full.content == b""

    before_200 = _memory_answers(a, 200)
    fast_200 = _get(a.config_url, headers=a.headers(a.token))
    full_200 = _get(a.config_url, params={"rede": a.rede, "other": "1"}, headers=a.headers(a.token))
    assert _memory_answers(a, 200) == before_200 + 1
    assert _headers_but_date(fast_200) == _headers_but_date(full_200) and fast_200.content == full_200.content
    # weak validators and lists match as on the full path; another ETag gets the body
    assert _get(a.config_url, headers={**a.headers(a.token), "If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert _get(a.config_url, headers={**a.headers(a.token), "If-None-Match": '"x"'}).status_code == 200


def test_wrong_tokens_still_meet_the_failure_budget(control_plane_factory: Callable[..., ControlPlane]) -> None:
    cp = control_plane_factory(env={"FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "3",
                                    "FLAGEEMONITOR_AUTH_FAILURE_WINDOW": "300"})
    etag = _etag_warm(cp, cp.token)
    bad = {"X-Bot-Token": "fmt_" + "y" * 43, "If-None-Match": etag}
    assert [_get(cp.config_url, headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
    assert _get(cp.config_url, headers={**cp.headers(), "If-None-Match": etag}).status_code == 304
    assert _get(cp.config_url, headers={"If-None-Match": etag}).status_code == 401  # no token: never from memory
    other_network = {**cp.headers(), "If-None-Match": etag}
    r = _get(cp.config_url, params={"rede": "OTHERNET"}, headers=other_network)
    assert r.status_code == 403 and r.json()["error"] == "network_denied"


def test_an_expired_token_is_refused_though_its_answer_is_remembered(control_plane: ControlPlane) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=20)  # room for the warm-up on a loaded machine
    token = control_plane.issue_token(expires_at=expires)
    etag = _etag_warm(control_plane, token)
    deadline = time.monotonic() + 90
    while True:
        sent = datetime.now(UTC)
        r = _get(control_plane.config_url, headers={**control_plane.headers(token), "If-None-Match": etag})
        if r.status_code != 304:
            break
        assert sent < expires, "a 304 for a request sent after the token expired"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert r.status_code == 403 and r.json()["error"] == "token_expired"
