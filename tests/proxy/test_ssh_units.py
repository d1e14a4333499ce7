"""SSH transport pieces that need no endpoint: command lines, algorithms, pinned keys, errors."""

from __future__ import annotations

import shlex
from pathlib import Path

import asyncssh
import pytest

from flageemonitor.core.errors import AuthRejected, HostUnreachable
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.ssh.algorithms import algorithms
from flageemonitor.proxy.ssh.commands import SudoMode, command_text, elevate, elevate_deciding, stdin_for
from flageemonitor.proxy.ssh.known_hosts import HostKeyStore, host_id
from flageemonitor.proxy.ssh.session import map_connect_error

HOST = Host.build("R1-LOJA001-PDV201", "127.0.0.2", password="s3cret-pw")


def test_sequence_arguments_are_each_quoted() -> None:
    line = command_text(["echo", "a b", "$(reboot)", "it's"])
    assert shlex.split(line) == ["echo", "a b", "$(reboot)", "it's"]


def test_root_is_never_elevated() -> None:
    assert elevate(["id", "-u"], SudoMode.NONE) == "id -u"


def test_sudo_elevates_the_whole_command_list_and_reads_the_password_from_stdin() -> None:
    line = elevate("cd /posnet && ./update; rm -f /tmp/x", SudoMode.PASSWORD)
    argv = shlex.split(line)
    assert argv[:6] == ["sudo", "-S", "-p", "", "sh", "-c"]
    assert argv[6] == "cd /posnet && ./update; rm -f /tmp/x"
    assert "s3cret-pw" not in line
    assert stdin_for(SudoMode.PASSWORD, "s3cret-pw", "data") == "s3cret-pw\ndata"
    assert stdin_for(SudoMode.PASSWORDLESS, "s3cret-pw", None) is None
    assert elevate(["true"], SudoMode.PASSWORDLESS) == "sudo -n true"


def test_an_undecided_sudo_mode_is_decided_on_the_endpoint_in_the_same_command() -> None:
    line = elevate_deciding("id -u; rm -f '/tmp/x y'", "@@flagee-sudo-ab12:")
    assert line.startswith("if sudo -n true 2>/dev/null; then echo '@@flagee-sudo-ab12:n' >&2; read -r flagee_pw; ")
    assert "exec sudo -n sh -c 'id -u; rm -f '\"'\"'/tmp/x y'\"'\"''" in line
    assert "else echo '@@flagee-sudo-ab12:S' >&2; exec sudo -S -p '' sh -c " in line
    assert elevate_deciding(["cat", "a b"], "@@m:").count("'a b'") == 2
    with pytest.raises(ValueError):
        elevate_deciding("true", "x'; reboot; '")


def test_legacy_algorithms_come_after_the_modern_ones() -> None:
    algs = algorithms(legacy=True)
    assert algs.kex[0] == "curve25519-sha256"
    for legacy in ("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1"):
        assert algs.kex.index(legacy) > algs.kex.index("curve25519-sha256@libssh.org")
        assert algs.kex.index(legacy) > algs.kex.index("diffie-hellman-group14-sha256")
    for cipher in ("aes128-cbc", "aes256-cbc", "3des-cbc"):
        assert algs.ciphers.index(cipher) > algs.ciphers.index("aes128-ctr")
    assert "hmac-sha1" in algs.macs and algs.macs.index("hmac-sha1") > algs.macs.index("hmac-sha2-256")


def test_without_legacy_no_sha1_or_cbc_is_offered() -> None:
    algs = algorithms(legacy=False)
    assert not any("sha1" in a for a in algs.kex + algs.macs)
    assert not any(c.endswith("-cbc") for c in algs.ciphers)


def test_pinned_keys_round_trip_in_openssh_format(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    key = asyncssh.generate_private_key("ssh-ed25519")
    store = HostKeyStore(path, "pin")
    store.pin("127.0.0.2", 2222, key)
    store.pin("127.0.0.2", 2222, key)  # once only
    line = path.read_text()
    assert line.count("\n") == 1 and line.startswith("[127.0.0.2]:2222 ssh-ed25519 ")
    assert path.stat().st_mode & 0o777 == 0o600
    again = HostKeyStore(path, "strict")
    assert again.pinned("127.0.0.2", 2222) == [key.convert_to_public()]
    assert again.pinned("127.0.0.2", 22) == []
    assert host_id("10.0.0.1", 22) == "10.0.0.1"


def test_insecure_policy_pins_nothing(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "known_hosts", "insecure")
    store.pin("127.0.0.2", 22, asyncssh.generate_private_key("ssh-ed25519"))
    assert not (tmp_path / "known_hosts").exists()
    with pytest.raises(ValueError, match="policy"):
        HostKeyStore(tmp_path / "kh", "trust-me")


def test_connect_errors_map_to_named_errors_without_secrets() -> None:
    refused = map_connect_error(HOST, ConnectionRefusedError(111, "Connection refused"), 5)
    assert isinstance(refused, HostUnreachable) and "connection refused" in str(refused)
    timeout = map_connect_error(HOST, TimeoutError(), 5)
    assert isinstance(timeout, HostUnreachable) and "within 5s" in str(timeout)
    kex = map_connect_error(HOST, asyncssh.KeyExchangeFailed("No matching key exchange algorithm"), 5)
    assert isinstance(kex, HostUnreachable) and "negotiation failed" in str(kex)
    denied = map_connect_error(HOST, asyncssh.PermissionDenied("Permission denied"), 5)
    assert isinstance(denied, AuthRejected)
    for err in (refused, timeout, kex, denied):
        assert "s3cret-pw" not in str(err)


def test_host_key_decision_accepts_the_pinned_key_refuses_a_changed_one(tmp_path: Path) -> None:
    from flageemonitor.proxy.ssh.session import _PinningClient

    store = HostKeyStore(tmp_path / "known_hosts", "pin")
    first = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    other = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    newcomer = _PinningClient(store, "127.0.0.2", 22)
    assert newcomer.validate_host_public_key("127.0.0.2", "127.0.0.2", 22, first)
    assert newcomer.new_key == first
    store.pin("127.0.0.2", 22, first)
    # a connection that started before the pin (concurrent first contact) sees the same key
    assert _PinningClient(store, "127.0.0.2", 22).validate_host_public_key("h", "127.0.0.2", 22, first)
    changed = _PinningClient(store, "127.0.0.2", 22)
    assert not changed.validate_host_public_key("h", "127.0.0.2", 22, other)
    assert changed.refused == "changed"
    strict = _PinningClient(HostKeyStore(tmp_path / "strict_hosts", "strict"), "127.0.0.3", 22)
    assert not strict.validate_host_public_key("h", "127.0.0.3", 22, first)
    assert strict.refused == "unknown"
