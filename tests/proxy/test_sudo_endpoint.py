"""Non-root endpoint users elevating through the real sudo (see devtools.fleet)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from devtools.fleet import PASSWORD, Fleet

from flageemonitor.core.hosts import Host
from flageemonitor.proxy.ssh import Connector, ConnectSettings
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
    assert target.read_bytes() == b"Server=10.0.0.1\n"
    info = target.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (0, 0o640)
