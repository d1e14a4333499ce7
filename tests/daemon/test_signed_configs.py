"""Signed configs end to end: the real control plane signs, the real `flageemonitor update-config`
and daemon check, and the fault proxy plays the man in the middle (see its docstring)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flageemonitor.core.config_model import parse_config_text
from flageemonitor.core.signing import HEADER, parse_key_list, parse_pinned, public_of, verify
from flageemonitor.proxy.config_trust import LEARNED_NAME
from tests.daemon.conftest import CLI, cli_env, update_config, valid_config
from tests.daemon.faultproxy import REWRITTEN_NOTE, FaultProxy
from tests.daemon.test_daemon_faults import DaemonProc
from tests.fixtures.server import ControlPlane, ControlPlaneFactory

pytestmark = pytest.mark.slow

UNTRUSTED = 8
_revision = iter(range(1, 1_000_000))


def next_config(server: ControlPlane, **extra: object) -> int:
    return server.set_config(valid_config(next(_revision), **extra))


def keys_of(server: ControlPlane) -> dict[str, object]:
    r = server.admin("signing", "list", "--json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def pin(server: ControlPlane) -> str:
    return str(keys_of(server)["pin"])


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    out = (r.stdout + r.stderr).strip()
    assert len(out.splitlines()) == 1, out
    return out


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@contextmanager
def own_server(factory: ControlPlaneFactory) -> Iterator[tuple[ControlPlane, FaultProxy]]:
    """A control plane of the test's own (its keys get rotated) behind a fault proxy."""
    server = factory(config=valid_config(0))
    fp = FaultProxy(server.url)
    try:
        yield server, fp
    finally:
        fp.close()


def pinned_env(state: Path, url: str, server: ControlPlane, keys: str | None = None) -> dict[str, str]:
    return cli_env(state, url, server.token, FLAGEEMONITOR_CONFIG_KEYS=keys if keys is not None else pin(server))


def primed(state: Path, env: dict[str, str]) -> bytes:
    r = update_config(env)
    assert r.returncode == 0, r.stdout + r.stderr
    return (state / "config_bot.json").read_bytes()


def test_the_server_signs_the_exact_body_and_lists_its_keys_and_the_installer_pins_them(server: ControlPlane) -> None:
    listed = keys_of(server)
    pinned = parse_pinned(str(listed["pin"]))
    assert list(pinned) == [listed["signing"]]
    r = httpx.get(server.config_url, headers=server.headers())
    assert r.status_code == 200
    assert verify(r.content, r.headers[HEADER], pinned).id == listed["signing"]
    with pytest.raises(Exception, match="does not match"):
        verify(r.content.replace(b"revision", b"revisiom"), r.headers[HEADER], pinned)
    # the key list is public (no token) and signed by every valid key
    k = httpx.get(server.config_url + "/keys")
    assert k.status_code == 200
    assert parse_key_list(k.content) == pinned
    verify(k.content, k.headers[HEADER], pinned)
    # both installers carry the pin the proxy's env file gets
    for name, needle in (("install.sh", f"DEFAULT_CONFIG_KEYS='{listed['pin']}'"),
                         ("install.ps1", f"$DefaultConfigKeys = '{listed['pin']}'")):
        body = httpx.get(server.url + "/api/bootstrap/" + name, headers=server.headers()).text
        assert needle in body, name
    # the key file sits beside the secrets key, readable by its owner only
    key_file = server.key_file.parent / "flageemonitor-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_a_proxy_without_pinned_keys_keeps_accepting_unsigned_configs(
    server: ControlPlane, proxy: FaultProxy, state: Path
) -> None:
    env = cli_env(state, proxy.url + "/api/ingest/bot/config", server.token)
    proxy.set("strip_signature")
    v = next_config(server)
    r = update_config(env)
    assert r.returncode == 0, r.stderr
    assert json.loads((state / "config_bot.json").read_bytes())["CONFIG_VERSION"] == v
    assert "signed by" not in r.stdout and not (state / LEARNED_NAME).exists()


@pytest.mark.parametrize(("mode", "why"), [
    ("rewrite_value", "does not match the body"),
    ("strip_signature", "it is not signed"),
    ("resign", "which this proxy does not trust"),
    ("forge_keys", "the server's key list was refused"),
])
def test_a_man_in_the_middle_is_refused_and_the_last_valid_config_kept(
    server: ControlPlane, proxy: FaultProxy, state: Path, mode: str, why: str
) -> None:
    env = pinned_env(state, proxy.url + "/api/ingest/bot/config", server)
    next_config(server)
    before = primed(state, env)
    next_config(server)
    proxy.set(mode)
    r = update_config(env)
    line = one_line(r)
    assert r.returncode == UNTRUSTED, line
    assert line.startswith("update-config: config refused: ") and why in line and "kept the current config" in line
    assert server.token not in line
    assert (state / "config_bot.json").read_bytes() == before
    assert REWRITTEN_NOTE.encode() not in b"".join(p.read_bytes() for p in state.iterdir() if p.is_file())
    assert proxy.faults_served >= 1
    # the attacker's key was never learned, and the real server's next answer is accepted
    learned = (state / LEARNED_NAME).read_text() if (state / LEARNED_NAME).exists() else ""
    assert public_of(proxy.attacker_key).id not in learned
    proxy.set("pass")
    r = update_config(env)
    assert r.returncode == 0 and "signed by key" in r.stdout, r.stdout + r.stderr
    assert (state / "config_bot.json").read_bytes() != before


def test_malformed_pins_are_one_line_and_change_nothing(server: ControlPlane, state: Path) -> None:
    env = pinned_env(state, server.config_url, server)
    before = primed(state, env)
    next_config(server)
    good = pin(server)
    for bad, why in ((good[:-2] + "!=", "is not base64"), ("0" * 16 + good[16:], "does not match its key"),
                     ("nonsense", "is not keyid:base64")):
        r = update_config({**env, "FLAGEEMONITOR_CONFIG_KEYS": bad})
        line = one_line(r)
        assert r.returncode == 2 and "FLAGEEMONITOR_CONFIG_KEYS is malformed" in line and why in line, line
        assert (state / "config_bot.json").read_bytes() == before


def test_rotation_accepts_either_key_during_the_overlap_and_refuses_the_old_one_once_retired(
    control_plane_factory: ControlPlaneFactory, tmp_path: Path
) -> None:
    with own_server(control_plane_factory) as (server, fp):
        url = fp.url + "/api/ingest/bot/config"
        old = keys_of(server)
        old_id = str(old["signing"])
        a = tmp_path / "a"
        a.mkdir()
        env = pinned_env(a, url, server, str(old["pin"]))  # installed before the rotation: old key only
        next_config(server)
        primed(a, env)
        captured = httpx.get(server.config_url, headers=server.headers())  # signed by the old key
        fp.replay_answer = (captured.content, captured.headers[HEADER])

        rot = server.admin("signing", "rotate")
        assert rot.returncode == 0, rot.stderr
        during = keys_of(server)
        new_id = str(during["signing"])
        assert new_id != old_id and [k["id"] for k in during["keys"]] == [new_id, old_id]  # type: ignore[attr-defined]
        v = next_config(server)
        r = update_config(env)
        assert r.returncode == 0 and f"signed by key {new_id}" in r.stdout, r.stdout + r.stderr
        assert json.loads((a / "config_bot.json").read_bytes())["CONFIG_VERSION"] == v
        assert new_id in json.loads((a / LEARNED_NAME).read_text())["trusted"]
        # during the overlap a config signed by the old key is still good
        fp.set("replay")
        r = update_config(env)
        assert r.returncode == 0 and f"signed by key {old_id}" in r.stdout, r.stdout + r.stderr
        assert (a / "config_bot.json").read_bytes() == captured.content
        # a proxy installed after the rotation gets both keys from the installer
        b = tmp_path / "b"
        b.mkdir()
        fp.set("pass")
        r = update_config(pinned_env(b, url, server))
        assert r.returncode == 0 and f"signed by key {new_id}" in r.stdout, r.stdout + r.stderr

        refused = server.admin("signing", "retire", new_id)
        assert refused.returncode == 1 and "signs configs now" in refused.stderr
        retired = server.admin("signing", "retire", old_id)
        assert retired.returncode == 0, retired.stderr
        assert [k["id"] for k in keys_of(server)["keys"]] == [new_id]  # type: ignore[attr-defined]
        # after the retirement the old key's config is refused (the list without it is learned first)
        fp.set("replay")
        before = (a / "config_bot.json").read_bytes()
        r = update_config(env)
        line = one_line(r)
        assert r.returncode == UNTRUSTED and f"signed by key {old_id}, which this proxy does not trust" in line, line
        assert (a / "config_bot.json").read_bytes() == before
        assert old_id not in json.loads((a / LEARNED_NAME).read_text())["trusted"]
        fp.set("pass")
        assert update_config(env).returncode == 0
        # a proxy that slept through the whole overlap cannot learn the new key by itself: its
        # old key vouches for nothing now; re-running the installer (new pins) fixes it
        c = tmp_path / "c"
        c.mkdir()
        r = update_config(pinned_env(c, url, server, str(old["pin"])))
        assert r.returncode == UNTRUSTED and "the server's key list was refused" in one_line(r)
        assert not (c / "config_bot.json").exists()

        audit = server.admin("audit", "list", "--json")
        actions = [e["action"] for e in json.loads(audit.stdout)]
        assert actions.count("signing.rotate") == 1 and actions.count("signing.retire") == 1


def _daemon_config(n: int) -> dict[str, object]:
    off = {name: False for name in ("install_endpoint_agent", "collect_coupons", "collect_coupon_details",
                                    "collect_coupon_lv", "refresh_endpoint_printer", "shutdown_endpoint")}
    return valid_config(n, PARAM_CRON_ACTIONS={"config_refresh": "* * * * *", **off})


def test_the_daemon_keeps_running_through_tampering_rotation_and_retirement(
    control_plane_factory: ControlPlaneFactory, tmp_path: Path
) -> None:
    with own_server(control_plane_factory) as (server, fp):
        _daemon_through_it_all(server, fp, tmp_path)


def _daemon_through_it_all(server: ControlPlane, fp: FaultProxy, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    server.set_config(_daemon_config(1))
    env = pinned_env(state, fp.url + "/api/ingest/bot/config", server)
    env.update(FLAGEEMONITOR_CLOCK_SCALE="30", FLAGEEMONITOR_HEARTBEAT_INTERVAL="0.5",
               FLAGEEMONITOR_CONFIG_RETRY="0.5", FLAGEEMONITOR_STOP_GRACE="3", TZ="UTC")
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, "daemon"], env=env, stdout=out, stderr=subprocess.STDOUT)
    d = DaemonProc(proc, log, state)
    refused = r"update-config: config refused: "
    try:
        d.wait("the first signed config", lambda: d.count(r"update-config: config updated to version \d+ "
                                                         r"\(signed by key") >= 1)
        for mode in ("rewrite_value", "resign", "strip_signature"):
            before = d.config()
            base = d.count(refused)
            fp.set(mode)
            server.set_config(_daemon_config(next(_revision)))
            d.wait(f"two refusals under {mode}", d.grew(refused, base, 2))
            assert d.config() == before, mode
            fp.set("pass")
            d.wait(f"recovery after {mode}", d.changed_from(before))
            parse_config_text(d.config())

        old = keys_of(server)
        fp.replay_answer = (d.config(), httpx.get(server.config_url, headers=server.headers()).headers[HEADER])
        assert server.admin("signing", "rotate").returncode == 0
        new_id = str(keys_of(server)["signing"])
        v = server.set_config(_daemon_config(next(_revision)))
        d.wait("the config signed by the new key",
               lambda: json.loads(d.config())["CONFIG_VERSION"] == v and d.count(f"signed by key {new_id}") >= 1)
        assert server.admin("signing", "retire", str(old["signing"])).returncode == 0
        before, base = d.config(), d.count(refused)
        fp.set("replay")
        d.wait("refusals of the retired key", d.grew(refused + r".*which this proxy does not trust", base, 2))
        assert d.config() == before
        assert d.alive()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not re.search(r"Traceback", d.text()), d.text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
