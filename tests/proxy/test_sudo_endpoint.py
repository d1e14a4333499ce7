"""Non-root endpoint users elevating through the real sudo (see devtools.fleet)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from devtools.fleet import PASSWORD, Fleet

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import CommandResult
from flageemonitor.proxy.ssh import Connector, ConnectSettings
from flageemonitor.proxy.ssh.commands import SudoMode
from flageemonitor.proxy.ssh.known_hosts import HostKeyStore
from tests.fixtures.sshd import FleetRun

pytestmark = pytest.mark.slow


def test_privilege_check_uses_sudo_with_password_nopasswd_or_reports_none(sudo_run: FleetRun) -> None:
    result = sudo_run("run", "test_endpoint_privilege", "--json", "--compat-mode", "off")
    hosts = result.hosts()
    assert hosts["FLEET-LOJA003-PDV201"]["status"] == "ok"
    assert hosts["FLEET-LOJA003-PDV201"]["data"]["via"] == "sudo with password"
    assert hosts["FLEET-LOJA003-PDV202"]["status"] == "ok"
    assert hosts["FLEET-LOJA003-PDV202"]["data"]["via"] == "sudo -n"
    refused = hosts["FLEET-LOJA003-PDV203"]
    assert refused["status"] == "failed" and "not in the sudoers file" in refused["detail"]
    assert result.returncode == 1
    assert PASSWORD not in result.stdout + result.stderr


def connector_in(tmp_path: Path) -> Connector:
    return Connector(ConnectSettings(connect_timeout=5, command_timeout=10),
                     HostKeyStore(tmp_path / "known_hosts", "pin"))


def host(fleet: Fleet, name: str) -> Host:
    endpoint = fleet.endpoint(name)
    return Host.build(name, endpoint.ip, port=endpoint.port, user=endpoint.user, password=PASSWORD)


def test_the_first_elevated_command_decides_the_sudo_mode_in_its_own_round_trip(sudo_fleet: Fleet,
                                                                               tmp_path: Path) -> None:
    """With a password known, no separate `sudo -n true` is sent: the first elevated command
    tries it on the endpoint, the command still gets only its own stdin, later commands reuse
    the mode found."""
    connector = connector_in(tmp_path)

    async def go(name: str) -> tuple[list[str], CommandResult, CommandResult, SudoMode | None]:
        session = await connector.open(host(sudo_fleet, name))
        sent: list[str] = []
        exec_ = session._exec

        async def counted(line: str, stdin: str | None, timeout: float | None) -> CommandResult:
            sent.append(line)
            return await exec_(line, stdin, timeout)

        session._exec = counted  # type: ignore[method-assign]
        try:
            first = await session.run(["cat"], sudo=True, input="payload line\n")
            second = await session.run("id -u", sudo=True)
            return sent, first, second, session._sudo_mode
        finally:
            await session.close()

    for name, mode in (("FLEET-LOJA003-PDV201", SudoMode.PASSWORD), ("FLEET-LOJA003-PDV202", SudoMode.PASSWORDLESS)):
        sent, first, second, found = asyncio.run(go(name))
        assert first.ok and first.stdout == "payload line\n", (name, first)
        assert "flagee-sudo" not in first.stderr and PASSWORD not in first.stdout + first.stderr
        assert second.stdout.strip() == "0" and found is mode
        assert len(sent) == 2 and not any(line.startswith("sudo -n true") for line in sent), sent


def test_sudo_elevates_a_whole_command_list_and_keeps_stdin_for_the_command(sudo_fleet: Fleet,
                                                                             tmp_path: Path) -> None:
    connector = connector_in(tmp_path)

    async def go() -> tuple[str, str, str]:
        session = await connector.open(host(sudo_fleet, "FLEET-LOJA003-PDV201"))
        try:
            plain = await session.run(["id", "-u"])
            listed = await session.run("id -u; id -un", sudo=True)
            echoed = await session.run(["cat"], sudo=True, input="payload line\n")
            return plain.stdout, listed.stdout, echoed.stdout
        finally:
            await session.close()

    plain, listed, echoed = asyncio.run(go())
    assert plain.strip() == "61001"
    assert listed.split() == ["0", "root"]  # both commands ran as root, not only the first
    assert echoed == "payload line\n"  # the password line was consumed by sudo, not the command


@pytest.mark.parametrize("name", ["FLEET-LOJA003-PDV201", "FLEET-LOJA003-PDV202"])  # password / NOPASSWD
def test_upload_with_sudo_lands_root_owned_and_leaves_no_staging_file(sudo_fleet: Fleet, tmp_path: Path,
                                                                      name: str) -> None:
    connector = connector_in(tmp_path)
    target = sudo_fleet.base / "sudo_target" / f"agent-{name}.conf"

    async def go() -> str:
        session = await connector.open(host(sudo_fleet, name))
        try:
            await session.put(b"Server=10.0.0.1\n", str(target), mode=0o640, sudo=True)
            staged = await session.run(f"ls -a /tmp | grep -c {target.name}.flagee- || true")
            return staged.stdout.strip()
        finally:
            await session.close()

    assert asyncio.run(go()) == "0"
    assert not target.exists()  # root wrote into the endpoint's private copy-on-write /, not the machine's
    landed = sudo_fleet.chroot("sudo") / str(target).lstrip("/")
    assert landed.read_bytes() == b"Server=10.0.0.1\n"
    info = landed.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o640)


def test_what_root_installs_through_sudo_stays_in_the_endpoints_private_root(sudo_fleet: Fleet,
                                                                               tmp_path: Path) -> None:
    connector = connector_in(tmp_path)
    script = ("mkdir -p /ariusmonitor/logs && useradd -r -M -s /bin/false fmprobe && grep -c fmprobe: /etc/passwd"
              " && { setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!; }")

    async def go() -> str:
        session = await connector.open(host(sudo_fleet, "FLEET-LOJA003-PDV202"))
        try:
            started = await session.run(script, sudo=True, check=True)
            await session.run("userdel fmprobe && rm -r /ariusmonitor", sudo=True, check=True)
            return started.stdout
        finally:
            await session.close()

    root = sudo_fleet.chroot("sudo")
    added, pid_text = asyncio.run(go()).split()
    pid = int(pid_text)
    assert added == "1"
    assert not Path("/ariusmonitor").exists() and "fmprobe" not in Path("/etc/passwd").read_text()
    assert "fmprobe:" not in (root / "etc/passwd").read_text()  # userdel edited the private copy
    assert os.readlink(f"/proc/{pid}/root").startswith(str(sudo_fleet.base))  # stop() finds it there
