"""`flageemonitor update-config` against the real control plane: every fault keeps the last
valid config byte-identical and says why in one line, with its own exit code."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flageemonitor.core.config_model import parse_config_text
from tests.daemon.conftest import CLI, cli_env, fill, tmpfs, update_config, valid_config
from tests.daemon.faultproxy import FaultProxy
from tests.daemon.faults import FAULTS, restore
from tests.fixtures.server import ControlPlane, ControlPlaneFactory

pytestmark = pytest.mark.slow

_revision = iter(range(1, 1_000_000))


def next_config(server: ControlPlane, **extra: object) -> int:
    return server.set_config(valid_config(next(_revision), **extra))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


def _primed(state: Path, env: dict[str, str]) -> bytes:
    """Fetch once so a valid config is on disk; return its bytes."""
    r = update_config(env)
    assert r.returncode == 0, r.stdout + r.stderr
    data = (state / "config_bot.json").read_bytes()
    parse_config_text(data)
    return data


def _one_line_without_token(r: subprocess.CompletedProcess[str], token: str) -> str:
    out = (r.stdout + r.stderr).strip()
    assert len(out.splitlines()) == 1, out
    assert token not in out
    return out


def test_update_config_fetches_then_answers_unchanged_with_etag_and_keeps_last_good(
    server: ControlPlane, state: Path
) -> None:
    env = cli_env(state, server.config_url, server.token)
    next_config(server)
    first = _primed(state, env)
    assert (state / "config_bot.etag").read_text().strip().startswith('"')
    again = update_config(env)
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert (state / "config_bot.json").read_bytes() == first
    version = next_config(server, PARAM_CRON_ACTIONS={"status_caixa": True})
    upd = update_config(env)
    assert upd.returncode == 0 and f"version {version}" in upd.stdout
    assert (state / "config_bot.last-good.json").read_bytes() == first
    assert json.loads((state / "config_bot.json").read_bytes())["PARAM_CRON_ACTIONS"] == {"status_caixa": True}
    # a config replaced by other means (an operator, a wrapper) is not answered with 304
    served = (state / "config_bot.json").read_bytes()
    (state / "config_bot.json").write_text(json.dumps({"PARAM_REDE": "TESTNET", "NOTE": "edited by hand"}))
    r = update_config(env)
    assert r.returncode == 0 and "updated" in r.stdout
    assert (state / "config_bot.json").read_bytes() == served


@pytest.mark.parametrize("fault", list(FAULTS))
def test_update_config_keeps_last_valid_config_on_fault(
    fault: str, server: ControlPlane, proxy: FaultProxy, state: Path
) -> None:
    apply, code, reason = FAULTS[fault]
    env = cli_env(state, server.api_base.replace(server.url, proxy.url) + "/bot/config", server.token)
    next_config(server)
    before = _primed(state, env)
    next_config(server)  # the server now has something newer: a working fetch would replace it
    apply(server, proxy)
    r = update_config(env)
    line = _one_line_without_token(r, server.token)
    assert r.returncode == code, line
    assert reason in line and "kept the current config" in line
    assert (state / "config_bot.json").read_bytes() == before
    # the fault gone, the next update installs the newer config
    restore(server, proxy)
    r = update_config(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (state / "config_bot.json").read_bytes() != before
    assert (state / "config_bot.last-good.json").read_bytes() == before


def test_update_config_reads_api_base_legacy_twin_and_puts_token_only_in_header(
    server: ControlPlane, proxy: FaultProxy, state: Path
) -> None:
    env = cli_env(state, "unused", server.token)
    del env["FLAGEEMONITOR_CONFIG_URL"]
    env["ARIUSMONITOR_API_URL"] = f'"{proxy.url}/api/ingest"'
    r = update_config(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert proxy.requests == 1
    r = update_config({k: v for k, v in env.items() if k != "FLAGEEMONITOR_TOKEN"})
    assert r.returncode == 2 and "no config URL or token" in r.stderr


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small", "256k") as mnt:
        yield mnt


def test_update_config_keeps_last_valid_config_when_the_disk_is_full(server: ControlPlane, small_fs: Path) -> None:
    env = cli_env(small_fs, server.config_url, server.token)
    next_config(server)
    before = _primed(small_fs, env)
    next_config(server, BIG="x" * 20_000)
    filler = fill(small_fs)
    r = update_config(env)
    line = _one_line_without_token(r, server.token)
    assert r.returncode == 7 and "disk full (ENOSPC)" in line
    assert (small_fs / "config_bot.json").read_bytes() == before
    assert not list(small_fs.glob(".*.tmp-*"))
    filler.unlink()
    r = update_config(env)
    assert r.returncode == 0 and "BIG" in (small_fs / "config_bot.json").read_text()


KILLS_PAUSED = 50
KILLS_RANDOM = 25


def test_update_config_killed_between_write_and_rename_never_loses_the_config(
    server: ControlPlane, state: Path
) -> None:
    env = cli_env(state, server.config_url, server.token)
    next_config(server)
    _primed(state, env)
    lost = 0
    hook = {**env, "FLAGEEMONITOR_FAULT_PAUSE_BEFORE_RENAME": "30"}
    for i in range(KILLS_PAUSED):
        before = (state / "config_bot.json").read_bytes()
        next_config(server)
        proc = subprocess.Popen([CLI, "update-config"], env=hook, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "paused before rename" in line, line
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
        after = (state / "config_bot.json").read_bytes()
        lost += after != before
        parse_config_text(after)
        if i % 10 == 9:  # now and then, a normal update in between picks up the newer config
            assert update_config(env).returncode == 0
    # kills at random moments: the file is always the old or the new document, never a mix
    rng = random.Random(4)
    torn = replaced = 0
    for _ in range(KILLS_RANDOM):
        before = (state / "config_bot.json").read_bytes()
        next_config(server)
        victim = subprocess.Popen([CLI, "update-config"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 1.2))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        after = (state / "config_bot.json").read_bytes()
        try:
            parse_config_text(after)
        except Exception:
            torn += 1
        if after != before:
            replaced += 1
            assert json.loads(after)["CONFIG_VERSION"] > json.loads(before)["CONFIG_VERSION"]
    print(f"\nSIGKILL faults injected: {KILLS_PAUSED} paused + {KILLS_RANDOM} random; "
          f"configs lost: {lost}; torn configs: {torn}; random kills that came after the rename: {replaced}")
    assert lost == 0 and torn == 0
    # stale temp files are cleaned by the next update, which works
    r = update_config(env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not list(state.glob(".*.tmp-*"))


def test_two_updates_never_interleave(server: ControlPlane, state: Path) -> None:
    env = cli_env(state, server.config_url, server.token)
    next_config(server)
    _primed(state, env)
    next_config(server)
    # the pause only has to outlast the second's start; the second's own line says it waited
    first = subprocess.Popen([CLI, "update-config"], env={**env, "FLAGEEMONITOR_FAULT_PAUSE_BEFORE_RENAME": "8"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    assert "paused before rename" in first.stderr.readline()  # the first holds the lock, mid-write
    second = subprocess.Popen([CLI, "update-config"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    assert second.stderr is not None
    waited = second.stderr.readline()
    assert "another update holds" in waited and "config_bot.lock; waiting" in waited, waited
    assert first.poll() is None, "the first finished before the second reached the lock: not a contention test"
    out1, _ = first.communicate(timeout=30)
    out2, _ = second.communicate(timeout=30)
    assert first.returncode == 0 and "updated" in out1
    assert second.returncode == 0 and "unchanged" in out2  # it saw the first's result, not a torn state


def test_update_config_gives_up_at_its_total_deadline_on_a_server_that_trickles(
    server: ControlPlane, proxy: FaultProxy, state: Path
) -> None:
    # one byte a second: no single read ever waits 30 s, only a total deadline ends this
    env = cli_env(state, proxy.url + "/api/ingest/bot/config", server.token, FLAGEEMONITOR_CONFIG_TIMEOUT="4")
    next_config(server)
    before = _primed(state, env)
    next_config(server)
    proxy.set("trickle")
    t0 = time.monotonic()
    r = update_config(env, timeout=120)
    elapsed = time.monotonic() - t0
    line = _one_line_without_token(r, server.token)
    print(f"\ntrickling server: update-config gave up after {elapsed:.1f} s (deadline 4 s)")
    assert r.returncode == 3, line
    assert f"no complete answer from {proxy.url}/api/ingest/bot/config within 4 s" in line
    assert "kept the current config" in line
    assert elapsed < 4 + 10  # interpreter start and exit under load, not another read timeout
    assert (state / "config_bot.json").read_bytes() == before


def test_update_config_names_the_url_and_relays_what_the_server_said(
    server: ControlPlane, control_plane_factory: ControlPlaneFactory, state: Path
) -> None:
    # a token for TESTNET asking for another network: the server's own reason reaches the operator
    env = cli_env(state, server.config_url, server.token, rede="OTHERNET")
    r = update_config(env)
    line = _one_line_without_token(r, server.token)
    assert r.returncode == 4, line
    assert f"{server.config_url} rejected the token: 403 Forbidden (network_denied: " in line
    assert "token is not valid for network 'OTHERNET'" in line
    # repeated failures: 429 with the server's Retry-After
    strict = control_plane_factory(env={"FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "1", "FLAGEEMONITOR_AUTH_TARPIT": "0"})
    bad = cli_env(state, strict.config_url, "fmt_" + "W" * 43)
    assert update_config(bad).returncode == 4
    r = update_config(bad)
    line = _one_line_without_token(r, "fmt_" + "W" * 43)
    assert r.returncode == 5, line
    assert "429 Too Many Requests (rate_limited: too many failed authentications" in line
    assert re.search(r"retry after \d+ s; kept the current config|retry after \d+ s; no config yet", line), line
