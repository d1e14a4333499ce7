"""The agent lifecycle with the Zabbix inventory, on real Zabbix 6.0 and 7.0 and a real
endpoint: the host's agent interface is unavailable, `install_endpoint_agent --agent-status 2`
(the daemon's schedule) selects it and installs the agent, the server's own passive checks make
the interface available, and the same selection then finds nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import PASSWORD, Fleet

from tests.fixtures.zabbix import ZabbixServer, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.zabbix, pytest.mark.agent]

PERSONA, FLEET_NAME = "ubuntu2204", "FLEET-LOJA001-PDV201"


def availability(server: ZabbixServer, hostid: str) -> int:
    itf = server.api().hostinterface.get(hostids=[hostid], filter={"main": 1, "type": 1}, output=["available"])
    return int(itf[0]["available"]) if itf else -1


def cli(tmp_path: Path, config: dict[str, Any], *args: str) -> dict[str, Any]:
    path = tmp_path / "config_bot.json"
    path.write_text(json.dumps(config))
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "flageemonitor.proxy.cli.app", *args, "--json", "--config", str(path)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.stdout, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_unavailable_agent_is_installed_and_becomes_available(zabbix_server: ZabbixServer, persona_fleet: Fleet,
                                                              agent_repo: Path, tmp_path: Path) -> None:
    endpoint = persona_fleet.endpoint(FLEET_NAME)
    assert endpoint.agent_port is not None
    rede = "AGT" + zabbix_server.label.replace(".", "")
    name = f"{rede}-LOJA001-PDV201"
    api = zabbix_server.api()
    gid = api.hostgroup.create(name=rede)["groupids"][0]
    hostid = str(api.host.create(
        host=name, groups=[{"groupid": gid}],
        interfaces=[{"type": 1, "main": 1, "useip": 1, "ip": endpoint.ip, "dns": "", "port": str(endpoint.agent_port)}],
        inventory_mode=0, inventory={"notes": f"root,{PASSWORD},{endpoint.port}"})["hostids"][0])
    itf = api.hostinterface.get(hostids=[hostid], output=["interfaceid"])[0]["interfaceid"]
    api.item.create(hostid=hostid, name="agent ping", key_="agent.ping", type=0, value_type=3, interfaceid=itf,
                    delay="2s")
    config = {
        "PARAM_REDE": rede, "PARAM_ZABBIX_URL": zabbix_server.api_url, "PARAM_ZABBIX_USER": zabbix_server.user,
        "PARAM_ZABBIX_PASSWORD": zabbix_server.password, "PARAM_LOCAL_REPO_DIR": str(agent_repo),
        "PARAM_PROXY_IP": "127.0.0.1",  # where the server's passive checks come from
        "ssh": {"timeout": 10, "command_timeout": 60, "host_key_policy": "pin"},
    }
    wait_for("the agent interface to be unavailable", lambda: availability(zabbix_server, hostid) == 2, 120)
    try:
        report = cli(tmp_path, config, "run", "pdv_install", "--agent-status", "2")
        assert [(h["host"], h["status"]) for h in report["hosts"]] == [(name, "changed")], report["hosts"]
        wait_for("the agent interface to become available", lambda: availability(zabbix_server, hostid) == 1, 120)
        again = cli(tmp_path, config, "plan", "pdv_install", "--agent-status", "2")
        assert again["hosts"] == [] and again["summary"]["total"] == 0
    finally:
        removed = cli(tmp_path, config, "run", "pdv_uninstall", "--host", name)
        assert [h["status"] for h in removed["hosts"]] in (["changed"], ["ok"]), removed["hosts"]
