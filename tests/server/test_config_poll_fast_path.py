"""The config poll answered from memory: two real server processes on one SQLite file or one
PostgreSQL database.

Every change is made by a third process (this test, through the service layer, as the CLI does),
and the very next request to each server must see it: no sleep, no retry. On PostgreSQL the
fixture's change helpers first wait until each server's change watch has been told of the change
(`ControlPlane.settle`: the notification window documented in `server.change_watch`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from flageemonitor.server.change_watch import APPLICATION_NAME
from flageemonitor.server.core.config import normalize_database_url
from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope
from flageemonitor.server.services import tokens
from tests.fixtures.postgres import PostgresCluster
from tests.fixtures.server import ACTOR, ControlPlane
from tests.support.waiting import wait_until

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
def two_servers(
    db_url: str, control_plane_factory: Callable[..., ControlPlane]
) -> tuple[ControlPlane, ControlPlane]:
    a = control_plane_factory(database_url=db_url)
    b = control_plane_factory(database_url=a.database_url, seed=False,
                              env={"FLAGEEMONITOR_SECRETS_KEY_FILE": str(a.key_file)})
    b.rede, b.client, b.token = a.rede, a.client, a.token
    return a, b


def _etag_warm(cp: ControlPlane, token: str) -> str:
    """A 200, then 304s until one is answered from memory; returns the ETag."""
    first = _get(cp.config_url, headers=cp.headers(token))
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    _until_from_memory(cp, token, etag)
    return etag


def _from_memory(cp: ControlPlane, token: str, etag: str) -> bool:
    """One conditional poll (it must be a 304); True when it was answered from memory."""
    before = _memory_answers(cp, 304)
    assert _get(cp.config_url, headers={**cp.headers(token), "If-None-Match": etag}).status_code == 304
    return _memory_answers(cp, 304) > before


def _until_from_memory(cp: ControlPlane, token: str, etag: str, timeout: float = 30) -> None:
    """Poll until one is answered from memory (a PostgreSQL watch connects after the server is up)."""
    deadline = time.monotonic() + timeout
    while not _from_memory(cp, token, etag):
        assert time.monotonic() < deadline, "the conditional poll never took the fast path"
        time.sleep(0.05)


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


def test_wrong_tokens_still_meet_the_failure_budget(
    db_url: str, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    cp = control_plane_factory(database_url=db_url, env={"FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "3",
                                    "FLAGEEMONITOR_AUTH_FAILURE_WINDOW": "300"})
    etag = _etag_warm(cp, cp.token)
    bad = {"X-Bot-Token": "fmt_" + "y" * 43, "If-None-Match": etag}
    assert [_get(cp.config_url, headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
    assert _get(cp.config_url, headers={**cp.headers(), "If-None-Match": etag}).status_code == 304
    assert _get(cp.config_url, headers={"If-None-Match": etag}).status_code == 401  # no token: never from memory
    other_network = {**cp.headers(), "If-None-Match": etag}
    r = _get(cp.config_url, params={"rede": "OTHERNET"}, headers=other_network)
    assert r.status_code == 403 and r.json()["error"] == "network_denied"


def test_an_expired_token_is_refused_though_its_answer_is_remembered(
    db_url: str, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    control_plane = control_plane_factory(database_url=db_url)
    expires = datetime.now(UTC) + timedelta(seconds=20)  # room for the warm-up on a loaded machine
    token = control_plane.issue_token(expires_at=expires)
    etag = _etag_warm(control_plane, token)
    def refused() -> Any:
        sent = datetime.now(UTC)
        r = _get(control_plane.config_url, headers={**control_plane.headers(token), "If-None-Match": etag})
        assert r.status_code != 304 or sent < expires, "a 304 for a request sent after the token expired"
        return r if r.status_code != 304 else None

    r = wait_until(refused, 90, "the token's expiry to be enforced", interval=0.2)
    assert r.status_code == 403 and r.json()["error"] == "token_expired"


@pytest.mark.postgres
def test_a_killed_listener_sends_polls_to_the_full_path_and_misses_no_change(
    postgres: PostgresCluster, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    url = postgres.create_database()
    dbname = url.rsplit("/", 1)[1]
    cp = control_plane_factory(database_url=url)
    doomed, doomed_id = cp.issue_token_with_id()
    etag = _etag_warm(cp, cp.token)
    assert _etag_warm(cp, doomed) == etag
    engine = make_engine(normalize_database_url(url))  # a connection of the test's own, opened while allowed
    with engine.connect():
        pass
    admin_dsn = f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        try:
            # no new connection to the database (the server's pooled ones keep working): the watch stays down
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                (dbname, APPLICATION_NAME),
            ).fetchall()
            assert killed == [(True,)], f"expected one listening connection, terminated {killed}"
            deadline = time.monotonic() + 30  # the watch notices at once; the poll in flight may be older
            while _from_memory(cp, cp.token, etag):
                assert time.monotonic() < deadline, "polls are still answered from memory with the watch down"
            for _ in range(5):  # from now on every poll takes the full path
                assert not _from_memory(cp, cp.token, etag)
            with session_scope(make_sessionmaker(engine)) as s:  # a change nobody is listening for
                tokens.revoke(s, doomed_id, ACTOR)
            r = _get(cp.config_url, headers={**cp.headers(doomed), "If-None-Match": etag})
            assert r.status_code == 403 and r.json()["error"] == "token_revoked"
        finally:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            engine.dispose()
    _until_from_memory(cp, cp.token, etag)  # the watch is back
    r = _get(cp.config_url, headers={**cp.headers(doomed), "If-None-Match": etag})  # its old answer is not served
    assert r.status_code == 403 and r.json()["error"] == "token_revoked"
    assert "change watch lost its database connection" in cp.logs()
