"""The real bundle on every supported persona, as root over the real sshd: extract, setup.sh
(twice), start.sh, a Zabbix `agent.ping` on the persona's own address and agent port, stop.sh."""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy.agent_bundle.elf import elf_class
from devtools.fleet import PERSONAS, Fleet, start_persona_fleet
from zabbix_utils import Getter

from flageemonitor.proxy.actions.base import CommandResult
from flageemonitor.proxy.ssh import Connector, ConnectSettings
from flageemonitor.proxy.ssh.known_hosts import HostKeyStore
from tests.fixtures.sshd import endpoint_host
from tests.fixtures.zabbix import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.agent]

LAYOUT = Path(__file__).resolve().parents[2] / "deploy/agent-bundle/LAYOUT.md"
SUPPORTED = tuple(p for p in PERSONAS if p.key in {"ubuntu2204", "ubuntu1404_i686", "mint21", "slackware1337"})
MARK = "/ariusmonitor/zabbix/sbin/zabbix_agentd"
PID_FILE = "ariusmonitor/logs/zabbix_agentd.pid"
CONFIG = """ListenPort={port}
PidFile=/ariusmonitor/logs/zabbix_agentd.pid
LogFile=/ariusmonitor/logs/zabbix_agentd.log
Server=127.0.0.1
AllowRoot=1
Include=/ariusmonitor/conf/zabbix_agentd.conf.d/*.conf
"""


@pytest.fixture(scope="module")
def agent_fleet() -> Iterator[Fleet]:
    """The four supported personas, private to this module (an installed agent changes them)."""
    fleet = start_persona_fleet(SUPPORTED)
    try:
        yield fleet
    finally:
        fleet.remove()


def allowed_paths() -> list[str]:
    """The globs LAYOUT.md allows setup.sh to create (its ```paths block)."""
    block = re.search(r"```paths\n(.*?)```", LAYOUT.read_text(), re.S)
    assert block, "LAYOUT.md has no ```paths block"
    return block.group(1).split()


def tree(root: Path) -> dict[str, str]:
    """Every path under an endpoint's / as the machine sees it -> its kind and content digest."""
    out: dict[str, str] = {}
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        if rel_top == "proc":
            dirs.clear()
            continue
        for name in dirs + files:
            path = Path(top, name)
            rel = os.path.normpath(os.path.join(rel_top, name))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = "file:" + str(hash(path.read_bytes()))
            else:
                out[rel] = "dir"
    out.pop("var/log/commands", None)
    return out


def ping(ip: str, port: int) -> str | None:
    try:
        response = Getter(ip, port, timeout=5).get("agent.ping")
    except OSError:
        return None
    return str(getattr(response, "value", response))


class Endpoint:
    """One root session on a persona."""

    def __init__(self, fleet: Fleet, name: str, known_hosts: Path) -> None:
        self.host = endpoint_host(fleet, name)
        self.connector = Connector(ConnectSettings(connect_timeout=10, command_timeout=60),
                                   HostKeyStore(known_hosts, "insecure"))

    def __call__(self, *steps: str | tuple[bytes, str]) -> list[CommandResult]:
        """Run shell lines; a (data, path) step uploads a file (SFTP, atomic)."""
        async def go() -> list[CommandResult]:
            session = await self.connector.open(self.host)
            results: list[CommandResult] = []
            try:
                for step in steps:
                    if isinstance(step, tuple):
                        await session.put(step[0], step[1], mode=0o600)
                    else:
                        results.append(await session.run(step))
            finally:
                await session.close()
            return results

        return asyncio.run(go())


@pytest.mark.parametrize("persona", SUPPORTED, ids=lambda p: p.key)
def test_bundle_installs_starts_answers_and_stops_on_every_persona(agent_bundle: Path, agent_fleet: Fleet,
                                                                   tmp_path: Path, persona: object) -> None:
    assert persona in SUPPORTED
    key, name = persona.key, persona.host  # type: ignore[attr-defined]
    archive = "ariusmonitor-i686.tar.gz" if key == "ubuntu1404_i686" else "ariusmonitor.tar.gz"
    root = agent_fleet.chroot(key)
    endpoint = agent_fleet.endpoint(name)
    port = endpoint.agent_port
    assert port is not None
    remote = Endpoint(agent_fleet, name, tmp_path / "known_hosts")
    before = tree(root)

    (extract, early_start) = remote((agent_bundle.joinpath(archive).read_bytes(), "/tmp/ariusmonitor.tar.gz"),
                                    "tar -xzf /tmp/ariusmonitor.tar.gz -C / && rm /tmp/ariusmonitor.tar.gz",
                                    "/ariusmonitor/utilities/start.sh")
    assert extract.ok, extract.stderr
    extracted = tree(root)
    assert {p for p in extracted if p not in before and not p.startswith("ariusmonitor")} == set()
    assert early_start.exit_status == 1
    assert early_start.stderr.strip() == "start.sh: no agent config at /ariusmonitor/conf/zabbix_agentd.conf"

    (setup, again) = remote("/ariusmonitor/utilities/setup.sh", "/ariusmonitor/utilities/setup.sh")
    assert setup.ok, setup.stderr
    after = tree(root)
    lines = setup.stdout.splitlines()
    created = {p for p in after if p not in extracted}
    assert {line.removeprefix("created: /") for line in lines if line.startswith("created: ")} == created
    assert "user: ariusmonitor" in lines and "group: ariusmonitor" in lines
    for path in created:
        assert any(fnmatch.fnmatchcase("/" + path, glob) for glob in allowed_paths()), path
    if key == "slackware1337":
        assert created == {"etc/rc.d/rc.ariusmonitor"} and "changed: /etc/rc.d/rc.local" in lines
        assert "# BEGIN ARIUSMONITOR" in (root / "etc/rc.d/rc.local").read_text()
    else:
        assert {"etc/init.d/ariusmonitor", "etc/rc2.d/S01ariusmonitor", "etc/rc0.d/K01ariusmonitor",
                "etc/sudoers.d/ariusmonitor", "etc/cron.d/ariusmonitor-check-service"} <= created
        assert oct((root / "etc/sudoers.d/ariusmonitor").stat().st_mode & 0o777) == "0o440"
    assert "ariusmonitor:" in (root / "etc/passwd").read_text()
    assert again.ok and again.stdout == "" and again.stderr == ""
    assert tree(root) == after  # the second run created and changed nothing

    config = CONFIG.format(port=port).encode()
    (start, status) = remote((config, "/ariusmonitor/conf/zabbix_agentd.conf"),
                             "/ariusmonitor/utilities/start.sh", "/ariusmonitor/utilities/start.sh --status")
    assert start.ok, start.stderr
    assert status.ok and status.stdout.startswith("running")
    assert wait_for(f"agent.ping on {endpoint.ip}:{port}", lambda: ping(endpoint.ip, port) == "1", deadline_s=20)
    pid = int((root / PID_FILE).read_text().split()[0])
    assert elf_class(Path(f"/proc/{pid}/exe")) == (32 if key == "ubuntu1404_i686" else 64)
    assert MARK in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert os.readlink(f"/proc/{pid}/root") == str(root)

    (stop, stopped_status, stop_again) = remote("/ariusmonitor/utilities/stop.sh",
                                                "/ariusmonitor/utilities/start.sh --status",
                                                "/ariusmonitor/utilities/stop.sh")
    assert stop.ok, stop.stderr
    assert stopped_status.exit_status == 3
    assert stop_again.ok  # nothing runs: still success
    assert not (root / PID_FILE).exists()
    assert not Path(f"/proc/{pid}/cmdline").exists() or MARK not in Path(f"/proc/{pid}/cmdline").read_text()
    assert ping(endpoint.ip, port) is None


def test_stop_never_kills_a_stranger_holding_the_pid_file(agent_bundle: Path, agent_fleet: Fleet,
                                                          tmp_path: Path) -> None:
    root = agent_fleet.chroot("slackware1337")
    remote = Endpoint(agent_fleet, "FLEET-LOJA001-PDV204", tmp_path / "known_hosts")
    (extract, started) = remote((agent_bundle.joinpath("ariusmonitor.tar.gz").read_bytes(), "/tmp/b.tar.gz"),
                                "tar -xzf /tmp/b.tar.gz -C / && rm /tmp/b.tar.gz",
                                "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $! > /" + PID_FILE + "; echo $!")
    assert extract.ok, extract.stderr
    stranger = int(started.stdout)
    try:
        (stop, status) = remote("/ariusmonitor/utilities/stop.sh", "/ariusmonitor/utilities/start.sh --status")
        assert stop.ok, stop.stderr
        assert status.exit_status == 3 and status.stdout.strip() == "not running"
        assert Path(f"/proc/{stranger}/cmdline").read_bytes().startswith(b"sleep")  # left alone
        assert not (root / PID_FILE).exists()
    finally:
        os.kill(stranger, 9)
        remote("rm -rf /ariusmonitor")


def test_start_fails_with_the_agents_own_reason_when_it_cannot_listen(agent_bundle: Path, agent_fleet: Fleet,
                                                                      tmp_path: Path) -> None:
    endpoint = agent_fleet.endpoint("FLEET-LOJA001-PDV201")
    remote = Endpoint(agent_fleet, endpoint.name, tmp_path / "known_hosts")
    busy = CONFIG.format(port=endpoint.port).encode()  # the persona's sshd holds that port
    (extract, start, status, _) = remote(
        (agent_bundle.joinpath("ariusmonitor.tar.gz").read_bytes(), "/tmp/b.tar.gz"),
        "tar -xzf /tmp/b.tar.gz -C / && rm /tmp/b.tar.gz",
        (busy, "/ariusmonitor/conf/zabbix_agentd.conf"),
        "/ariusmonitor/utilities/start.sh", "/ariusmonitor/utilities/start.sh --status", "rm -rf /ariusmonitor")
    assert extract.ok, extract.stderr
    assert start.exit_status == 1
    assert start.stderr.strip().splitlines()[-1] in {"start.sh: zabbix_agentd did not start",
                                                     "start.sh: zabbix_agentd is not running 2 s after start"}
    assert "listen" in start.stderr.lower(), start.stderr  # the agent's log tail says why
    assert status.exit_status == 3
