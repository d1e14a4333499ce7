"""End to end: `flageemonitor run test_endpoint_connection --json` with the Zabbix inventory
selects the network's hosts on real Zabbix 6.0 and 7.0, reaches real sshd endpoints (the persona
fleet) with the credentials from the inventory notes, and the results land in Zabbix."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import PASSWORD, Fleet

from tests.fixtures.zabbix import ZabbixServer, wait_for
from tests.zabbix.conftest import agent

pytestmark = [pytest.mark.zabbix, pytest.mark.slow]

PERSONAS = {"ubuntu2204": "password", "mint21": "key", "nothing_listens": "password"}


def _seed(server: ZabbixServer, fleet: Fleet, rede: str) -> dict[str, str]:
    """The fleet's endpoints as Zabbix hosts of `rede`, plus one of another network at a live IP."""
    api = server.api()
    gid = api.hostgroup.create(name=rede)["groupids"][0]
    other = api.hostgroup.create(name=f"{rede}-OTHER")["groupids"][0]
    expected: dict[str, str] = {}
    for e in fleet.endpoints:
        if e.persona not in PERSONAS:
            continue
        name = e.name.replace(fleet.endpoints[0].name.split("-")[0], rede, 1)
        notes = f"root,{PASSWORD},{e.port}" if e.auth == "password" else f"root,,{e.port}"
        api.host.create(host=name, groups=[{"groupid": gid}], interfaces=[agent(e.ip)],
                        inventory_mode=0, inventory={"notes": notes})
        expected[name] = e.persona
    live = fleet.endpoints[0]
    api.host.create(host="ELSE-LOJA001-PDV201", groups=[{"groupid": other}], interfaces=[agent(live.ip)],
                    inventory_mode=0, inventory={"notes": f"root,{PASSWORD},{live.port}"})
    return expected


def _cli(tmp_path: Path, config: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config_bot.json"
    cfg.write_text(json.dumps(config))
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "flageemonitor.proxy.cli.app", *args, "--config", str(cfg)],
                          env=env, capture_output=True, text=True, timeout=180, check=False)


def test_run_with_zabbix_inventory_selects_the_network_and_reports_back(
    zabbix_server: ZabbixServer, persona_fleet: Fleet, tmp_path: Path
) -> None:
    rede = "E2E" + zabbix_server.label.replace(".", "")
    expected = _seed(zabbix_server, persona_fleet, rede)
    config = {
        "PARAM_REDE": rede, "PARAM_ZABBIX_URL": zabbix_server.api_url,
        "PARAM_ZABBIX_USER": zabbix_server.user, "PARAM_ZABBIX_PASSWORD": zabbix_server.password,
        "PARAM_SSH_KEY_FILE": str(persona_fleet.client_key),
        "PARAM_ZABBIX_REPORTING": True, "PARAM_ZABBIX_SENDER_SERVER": zabbix_server.trapper_host,
        "PARAM_ZABBIX_SENDER_PORT": zabbix_server.trapper_port,
        "ssh": {"timeout": 5, "command_timeout": 30, "host_key_policy": "pin"},
    }
    setup = _cli(tmp_path, config, "zabbix", "setup-reporting")
    assert setup.returncode == 0, setup.stderr
    some_host = next(iter(expected))
    zabbix_server.send_until_processed(some_host, "flageemonitor.failed[diagnose_env]", "0")

    run = _cli(tmp_path, config, "run", "test_endpoint_connection", "--json")
    report = json.loads(run.stdout)
    statuses = {h["host"]: h["status"] for h in report["hosts"]}
    assert set(statuses) == set(expected), run.stderr  # never ELSE-LOJA001-PDV201
    by_persona = {expected[name]: status for name, status in statuses.items()}
    assert by_persona == {"ubuntu2204": "ok", "mint21": "ok", "nothing_listens": "unreachable"}
    assert run.returncode == 1  # a host failed: the exit code says so
    assert PASSWORD not in run.stdout + run.stderr

    action = "test_endpoint_connection"
    key = f"flageemonitor.status[{action}]"
    for name, persona in expected.items():
        value = wait_for(f"{name}'s result in Zabbix", functools.partial(zabbix_server.last_value, name, key))
        assert json.loads(value)["status"] == by_persona[persona]
        assert zabbix_server.last_value(name, f"flageemonitor.failed[{action}]") == (
            "1" if persona == "nothing_listens" else "0")

    narrowed = _cli(tmp_path, config, "run", "test_endpoint_connection", "--json", "--pdv", "201")
    assert [h["host"] for h in json.loads(narrowed.stdout)["hosts"]] == [f"{rede}-LOJA001-PDV201"]
    assert narrowed.returncode == 0, narrowed.stderr
