"""The agent lifecycle where systemd is PID 1 (a Debian 12 endpoint, `tests.fixtures.systemd_endpoint`),
the way most terminals run today and the chroot personas cannot: the bundle's setup installs a
systemd unit, and the agent must come back after a reboot.

plan changes nothing -> install: a real agent.ping answers, the unit is enabled -> a second
install is unchanged (same PID) -> a reboot of the endpoint brings the agent back -> a
PARAM_PROXY_IP change restarts it once -> uninstall (planned first) leaves /etc and the bundle
directory as they were and nothing answers; a second uninstall is unchanged. A broken upgrade
is rolled back and the old agent runs under its unit again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import BROKEN_SETUP, DEAD_AGENT, TOOL_BACKUPS, agent_ping, diff, listing, variant
from tests.fixtures.systemd_endpoint import SystemdEndpoint, systemd_endpoints
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.agent]

NAME = "FLEET-LOJA009-PDV211"
PIDFILE = "ariusmonitor/logs/zabbix_agentd.pid"
UNIT = "ariusmonitor.service"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemdEndpoint]:
    with systemd_endpoints(tmp_path_factory.mktemp("systemd-agent"), (NAME,)) as eps:
        yield eps[NAME]


def tree(ep: SystemdEndpoint) -> dict[str, tuple[Any, ...]]:
    return {k: v for k, v in listing(ep.root, under=("etc", "ariusmonitor")).items() if k not in TOOL_BACKUPS}


def agent_config(repo: Path) -> dict[str, Any]:
    return {"PARAM_REDE": "FLEET", "PARAM_LOCAL_REPO_DIR": str(repo), "PARAM_PROXY_IP": "127.0.0.1",
            "ssh": {"timeout": 10, "command_timeout": 120, "host_key_policy": "pin"}}


def pid(ep: SystemdEndpoint) -> str:
    return (ep.root / PIDFILE).read_text().strip()


def test_install_rerun_reboot_reconfigure_uninstall(endpoint: SystemdEndpoint, agent_repo: Path,
                                                    tmp_path: Path) -> None:
    ep = endpoint
    config = agent_config(agent_repo)
    before = tree(ep)

    planned = ep.flageemonitor(tmp_path, "plan", "pdv_install", config=config)
    assert planned["status"] == "planned" and planned["changed"], planned["detail"]
    assert diff(before, tree(ep)) == {}

    installed = ep.flageemonitor(tmp_path, "run", "pdv_install", config=config)
    assert installed["status"] == "changed", installed["detail"]
    assert agent_ping("127.0.0.1", ep.agent_port) == "1"
    assert ep.inside("systemctl", "is-enabled", UNIT) == "enabled"
    # started through its unit: systemd supervises the agent from the first start, not after a reboot
    assert ep.inside("systemctl", "is-active", UNIT) == "active"
    assert ep.inside("systemctl", "show", "-p", "MainPID", "--value", UNIT) == pid(ep)
    assert [c["summary"] for c in installed["changes"]][-1].startswith("start ariusmonitor (systemd)")
    first = pid(ep)

    again = ep.flageemonitor(tmp_path, "run", "pdv_install", config=config)
    assert (again["status"], again["detail"].split(";")[0], again["changes"]) == ("ok", "unchanged", []), again
    assert pid(ep) == first

    ep.reboot()
    # active once start.sh has seen the agent alive (2 s after it forked); then it answers
    wait_until(lambda: ep.inside("systemctl", "is-active", UNIT, check=False) == "active", 60,
               "the unit to be active after a reboot")
    assert agent_ping("127.0.0.1", ep.agent_port) == "1"
    after_boot = ep.flageemonitor(tmp_path, "run", "pdv_install", config=config)
    assert (after_boot["status"], after_boot["changes"]) == ("ok", []), after_boot

    booted = pid(ep)
    reconfigured = ep.flageemonitor(tmp_path, "run", "pdv_update_config",
                                    config={**config, "PARAM_PROXY_IP": "127.0.0.1,127.0.0.2"})
    assert reconfigured["status"] == "changed", reconfigured["detail"]
    assert [(c["kind"], c.get("verb")) for c in reconfigured["changes"]] == [("put_file", None), ("service", "restart")]
    assert agent_ping("127.0.0.1", ep.agent_port) == "1" and pid(ep) != booted
    assert ep.inside("systemctl", "is-active", UNIT) == "active"  # restarted under systemd, not beside it

    uninstall_plan = ep.flageemonitor(tmp_path, "plan", "pdv_uninstall", config=config)
    assert uninstall_plan["status"] == "planned" and uninstall_plan["changed"]
    assert agent_ping("127.0.0.1", ep.agent_port) == "1"

    removed = ep.flageemonitor(tmp_path, "run", "pdv_uninstall", config=config)
    assert removed["status"] == "changed", removed["detail"]
    assert diff(before, tree(ep)) == {}
    wait_until(lambda: agent_ping("127.0.0.1", ep.agent_port) is None, 20, "the agent to stop answering")
    assert ep.inside("systemctl", "is-active", UNIT, check=False) != "active"
    gone = ep.flageemonitor(tmp_path, "run", "pdv_uninstall", config=config)
    assert (gone["status"], gone["detail"].split(";")[0]) == ("ok", "unchanged")


@pytest.mark.parametrize(("member", "content"), [("ariusmonitor/utilities/setup.sh", BROKEN_SETUP),
                                                 ("ariusmonitor/zabbix/sbin/zabbix_agentd", DEAD_AGENT)],
                         ids=["setup-fails", "agent-exits"])
def test_a_broken_upgrade_rolls_back_to_the_old_agent_under_its_unit(
        endpoint: SystemdEndpoint, agent_repo: Path, tmp_path: Path, member: str, content: bytes) -> None:
    ep = endpoint
    config = agent_config(agent_repo)
    before = tree(ep)
    try:
        assert ep.flageemonitor(tmp_path, "run", "pdv_install", config=config)["status"] == "changed"
        good = {k: v for k, v in tree(ep).items() if not k.startswith("ariusmonitor/logs")}
        broken = variant(agent_repo, tmp_path / "broken", {member: content, "ariusmonitor/VERSION": b"99.0.0-broken\n"})
        result = ep.flageemonitor(tmp_path, "run", "pdv_install",
                                  config={**config, "PARAM_LOCAL_REPO_DIR": str(broken)})
        assert result["status"] == "failed" and "; rolled back" in result["detail"], result["detail"]
        # the reason, not only systemd's "see journalctl"
        assert ("broken on purpose" if content == BROKEN_SETUP else "zabbix_agentd did not start") in result["detail"]
        assert agent_ping("127.0.0.1", ep.agent_port) == "1"
        assert ep.inside("systemctl", "is-active", UNIT) == "active"
        assert ep.inside("systemctl", "show", "-p", "MainPID", "--value", UNIT) == pid(ep)
        assert diff(good, {k: v for k, v in tree(ep).items() if not k.startswith("ariusmonitor/logs")}) == {}
    finally:
        ep.flageemonitor(tmp_path, "run", "pdv_uninstall", config=config)
    assert diff(before, tree(ep)) == {}
