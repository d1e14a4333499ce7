"""The agent lifecycle on real endpoints: every supported persona (Ubuntu 22.04, Ubuntu 14.04
i686, Mint 21, Slackware 13.37 with legacy-only SSH) and a non-root user elevating through the
real sudo, with the real bundle (Debian's zabbix-agent, built by deploy.agent_bundle.build).

plan changes nothing and sends only probes -> install: the agent answers a real agent.ping on
the endpoint's agent port -> a second install is `ok`/unchanged, sends the probe only, the PID
is unchanged -> a PARAM_PROXY_IP change rewrites only the config and restarts once -> uninstall
(planned first) leaves the file tree as it was before the install, and the agent is gone."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from devtools.fleet import Fleet

from tests.agent.conftest import BROKEN_SETUP, DEAD_AGENT, TOOL_BACKUPS, AgentCli, agent_ping, diff, listing, variant
from tests.fixtures.zabbix import wait_for
from tests.support.probes import is_probe

pytestmark = [pytest.mark.slow, pytest.mark.agent]

PERSONAS = {"ubuntu2204": "FLEET-LOJA001-PDV201", "ubuntu1404_i686": "FLEET-LOJA001-PDV202",
            "mint21": "FLEET-LOJA001-PDV203", "slackware1337": "FLEET-LOJA001-PDV204"}
SUDO_HOST = "FLEET-LOJA003-PDV201"  # fmtest-pw: sudo with a password
PIDFILE = "ariusmonitor/logs/zabbix_agentd.pid"


@dataclass
class Target:
    fleet: Fleet
    name: str
    persona: str
    root: Path
    under: tuple[str, ...]  # what the tree listing covers
    logs_commands: bool

    @property
    def ip(self) -> str:
        return self.fleet.endpoint(self.name).ip

    @property
    def port(self) -> int:
        port = self.fleet.endpoint(self.name).agent_port
        assert port is not None
        return port

    def pid(self) -> str:
        return (self.root / PIDFILE).read_text().strip()

    def tree(self) -> dict[str, tuple[object, ...]]:
        found = listing(self.root, under=self.under)
        if self.persona == "sudo":
            # the shadow tools rewrite their own `-` backups on every change; this endpoint's are
            # the machine's, older than its account files, so they cannot come back as they were
            return {k: v for k, v in found.items() if k not in TOOL_BACKUPS}
        return found


@pytest.fixture(params=[*PERSONAS, "sudo"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "sudo":
        fleet: Fleet = request.getfixturevalue("sudo_fleet")
        # the endpoint's / is a copy-on-write view of this machine's: compare what an install touches
        return Target(fleet, SUDO_HOST, "sudo", fleet.chroot("sudo"), ("ariusmonitor", "etc"), False)
    fleet = request.getfixturevalue("persona_fleet")
    return Target(fleet, PERSONAS[request.param], request.param, fleet.chroot(request.param), ("",), True)


def only_probes(commands: list[str]) -> bool:
    """Every command is a read-only probe (the facts probe, or a change-model probe, whose output
    is collected in one variable and written at once)."""
    return bool(commands) and all(is_probe(c) for c in commands)


def test_install_plan_rerun_reconfigure_uninstall(target: Target, agent_repo: Path,
                                                  agent_cli: Callable[[Fleet], AgentCli]) -> None:
    cli = agent_cli(target.fleet)
    cli.configure(agent_repo)
    name = target.name
    before = target.tree()

    target.fleet.clear_commands()
    planned = cli.host("plan", "pdv_install", name=name)
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    assert {c["kind"] for c in planned["changes"]} >= {"unpack_archive", "run_command", "put_file", "service"}
    assert diff(before, target.tree()) == {}
    if target.logs_commands:
        assert only_probes(target.fleet.commands(target.persona)), target.fleet.commands(target.persona)

    installed = cli.host("run", "pdv_install", name=name)
    assert installed["status"] == "changed", installed["detail"]
    assert installed["data"]["arch"] == ("i686" if target.persona.endswith("i686") else "x86_64")
    assert agent_ping(target.ip, target.port) == "1"
    pid = target.pid()
    installed_tree = target.tree()

    target.fleet.clear_commands()
    again = cli.host("run", "pdv_install", name=name)
    assert (again["status"], again["detail"].split(";")[0], again["changes"]) == ("ok", "unchanged", []), again
    assert target.pid() == pid
    if target.logs_commands:
        commands = target.fleet.commands(target.persona)
        assert len(commands) == 1 and only_probes(commands), commands  # no upload, no restart

    cli.configure(agent_repo, PARAM_PROXY_IP="127.0.0.1,127.0.0.2")
    reconfigured = cli.host("run", "pdv_update_config", name=name)
    assert reconfigured["status"] == "changed", reconfigured["detail"]
    assert [(c["kind"], c.get("path"), c.get("verb")) for c in reconfigured["changes"]] == [
        ("put_file", "/ariusmonitor/conf/zabbix_agentd.conf", None), ("service", None, "restart")]
    assert "+Server=127.0.0.1,127.0.0.2" in reconfigured["changes"][0]["diff"]
    assert agent_ping(target.ip, target.port) == "1" and target.pid() != pid
    changed = diff(installed_tree, target.tree())
    assert {k for k in changed if not k.startswith("ariusmonitor/logs")} == {"ariusmonitor/conf/zabbix_agentd.conf"}

    uninstall_plan = cli.host("plan", "pdv_uninstall", name=name)
    assert uninstall_plan["status"] == "planned" and uninstall_plan["changed"]
    assert any(c["kind"] == "remove_path" and c["path"] == "/ariusmonitor" for c in uninstall_plan["changes"])
    assert agent_ping(target.ip, target.port) == "1"

    removed = cli.host("run", "pdv_uninstall", name=name)
    assert removed["status"] == "changed", removed["detail"]
    assert diff(before, target.tree()) == {}
    assert wait_for("the agent to stop answering", lambda: agent_ping(target.ip, target.port) is None, 20)
    gone = cli.host("run", "pdv_uninstall", name=name)
    assert (gone["status"], gone["detail"].split(";")[0]) == ("ok", "unchanged")




@pytest.mark.parametrize("persona", ["ubuntu2204", "slackware1337"])
@pytest.mark.parametrize(("member", "content"), [("ariusmonitor/utilities/setup.sh", BROKEN_SETUP),
                                                 ("ariusmonitor/zabbix/sbin/zabbix_agentd", DEAD_AGENT)],
                         ids=["setup-fails", "agent-exits"])
def test_broken_bundle_upgrade_rolls_back_and_the_old_agent_keeps_answering(
        persona: str, member: str, content: bytes, persona_fleet: Fleet, agent_repo: Path, tmp_path: Path,
        agent_cli: Callable[[Fleet], AgentCli]) -> None:
    name, root = PERSONAS[persona], persona_fleet.chroot(persona)
    endpoint = persona_fleet.endpoint(name)
    assert endpoint.agent_port is not None
    cli = agent_cli(persona_fleet)
    cli.configure(agent_repo)
    before = listing(root)
    try:
        assert cli.host("run", "pdv_install", name=name)["status"] == "changed"
        good = {k: v for k, v in listing(root).items() if not k.startswith("ariusmonitor/logs")}
        broken = variant(agent_repo, tmp_path / "broken", {member: content,
                                                           "ariusmonitor/VERSION": b"99.0.0-broken\n"})
        cli.configure(broken)
        result = cli.host("run", "pdv_install", name=name)
        assert result["status"] == "failed" and result["detail"].endswith("; rolled back"), result["detail"]
        assert not result["changed"]
        assert agent_ping(endpoint.ip, endpoint.agent_port) == "1"
        after = {k: v for k, v in listing(root).items() if not k.startswith("ariusmonitor/logs")}
        assert diff(good, after) == {}
    finally:
        cli.configure(agent_repo)
        cli.host("run", "pdv_uninstall", name=name)
    assert diff(before, listing(root)) == {}


def test_hostile_values_are_refused_and_nothing_runs(persona_fleet: Fleet, agent_repo: Path, tmp_path: Path,
                                                     agent_cli: Callable[[Fleet], AgentCli]) -> None:
    endpoint = persona_fleet.endpoint(PERSONAS["ubuntu2204"])
    root = persona_fleet.chroot("ubuntu2204")
    marker = "/tmp/fm-pwned"
    inventory = tmp_path / "hostile.yaml"
    inventory.write_text(yaml.safe_dump({"hosts": [{
        "name": f"FLEET-LOJA009-PDV201$(touch {marker});touch {marker}", "ip": endpoint.ip, "port": endpoint.port,
        "password": "fleet-Pass-1", "agent_port": endpoint.agent_port}]}))
    cli = agent_cli(persona_fleet)
    cli.configure(agent_repo)
    persona_fleet.clear_commands()
    result = cli("run", "pdv_install", "--compat-mode", "off", inventory=inventory)
    (host,) = result.report()["hosts"]
    assert host["status"] == "failed" and "refused before contacting the endpoint" in host["detail"]
    for hostile in ("127.0.0.1\nServer=0.0.0.0/0", f"$(touch {marker})", f"127.0.0.1; touch {marker}"):
        cli.configure(agent_repo, PARAM_PROXY_IP=hostile)
        refused = cli("run", "pdv_install", "--host", PERSONAS["ubuntu2204"])
        # a JSON run reports its refusal as a JSON error document on stdout
        assert refused.returncode == 3 and "PARAM_PROXY_IP" in json.loads(refused.stdout)["error"]
    assert not (root / marker.lstrip("/")).exists()
    assert persona_fleet.commands("ubuntu2204") == []
    assert json.loads(result.stdout)["summary"]["failures"] == 1


@pytest.mark.parametrize("persona", ["ubuntu2204", "slackware1337"])
def test_the_probe_sees_every_drift_from_the_installed_state(persona: str, persona_fleet: Fleet, agent_repo: Path,
                                                              agent_cli: Callable[[Fleet], AgentCli]) -> None:
    """An asset's content and mode, the agent config, a file of the bundle, and the agent not
    running are each found by the one probe and planned as exactly their fix."""
    name, root = PERSONAS[persona], persona_fleet.chroot(persona)
    cli = agent_cli(persona_fleet)
    cli.configure(agent_repo)
    before = listing(root)
    agent = root / "ariusmonitor"
    try:
        assert cli.host("run", "pdv_install", name=name)["status"] == "changed"
        (agent / "MonitoraSATc").write_bytes(b"#!/bin/sh\necho tampered\n")
        (agent / "MonitoraSAT.sh").chmod(0o644)
        conf = agent / "conf" / "zabbix_agentd.conf"
        conf.write_text(conf.read_text().replace("Server=127.0.0.1", "Server=10.9.9.9"))
        planned = cli.host("plan", "pdv_update_config", name=name)
        assert sorted((c["kind"], c.get("path") or c.get("verb")) for c in planned["changes"]) == [
            ("put_file", "/ariusmonitor/MonitoraSAT.sh"), ("put_file", "/ariusmonitor/MonitoraSATc"),
            ("put_file", "/ariusmonitor/conf/zabbix_agentd.conf"), ("service", "restart")], planned["changes"]
        conf_change = next(c for c in planned["changes"] if c.get("path") == "/ariusmonitor/conf/zabbix_agentd.conf")
        assert "-Server=10.9.9.9" in conf_change["diff"] and "+Server=127.0.0.1" in conf_change["diff"]

        (agent / "utilities" / "start.sh").write_bytes(b"#!/bin/sh\nexit 0\n")
        bundle = cli.host("plan", "pdv_install", name=name)
        assert "unpack_archive" in {c["kind"] for c in bundle["changes"]}, bundle["changes"]

        assert cli.host("run", "pdv_install", name=name)["status"] == "changed"
        again = cli.host("run", "pdv_install", name=name)
        assert (again["status"], again["changes"]) == ("ok", []), again
        pidfile = root / PIDFILE
        pid = pidfile.read_text()
        pidfile.write_text("999999\n")  # the PID file names no running agent
        stopped = cli.host("plan", "pdv_install", name=name)
        pidfile.write_text(pid)
        assert [(c["kind"], c.get("verb")) for c in stopped["changes"]] == [("service", "start")], stopped["changes"]
    finally:
        cli.configure(agent_repo)
        cli.host("run", "pdv_uninstall", name=name)
    assert diff(before, listing(root)) == {}
