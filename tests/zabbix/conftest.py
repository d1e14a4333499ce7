"""Seed data for the Zabbix suite: one network (MLAR) with endpoints of every kind, and a
second network (OUTRA) whose hosts the default scope must never select."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fixtures.zabbix import ZabbixServer, wait_for

REDE = "MLAR"
OTHER = "OUTRA"
PROBLEM_TRIGGER = "FM test problem on {HOST.NAME}"
PROBLEM_KEY = "fm.test.problem"


def agent(ip: str, main: int = 1, port: str = "10050") -> dict[str, Any]:
    return {"type": 1, "main": main, "useip": 1, "ip": ip, "dns": "", "port": port}


@dataclass
class Seed:
    server: ZabbixServer
    groupid: str
    other_groupid: str
    hostids: dict[str, str] = field(default_factory=dict)
    excluded_templateid: str = ""
    problem_triggerid: str = ""
    ok_triggerid: str = ""


def _create_host(api: Any, seed: Seed, name: str, groupid: str, interfaces: list[dict[str, Any]],
                 tags: dict[str, str] | None = None, notes: str | None = None, status: int = 0,
                 templates: list[str] | None = None) -> str:
    params: dict[str, Any] = {
        "host": name,
        "groups": [{"groupid": groupid}],
        "interfaces": interfaces,
        "tags": [{"tag": k, "value": v} for k, v in (tags or {}).items()],
        "status": status,
    }
    if notes is not None:
        params["inventory_mode"] = 0
        params["inventory"] = {"notes": notes}
    if templates:
        params["templates"] = [{"templateid": t} for t in templates]
    hostid = str(api.host.create(**params)["hostids"][0])
    seed.hostids[name] = hostid
    return hostid


@pytest.fixture(scope="session")
def seeded(zabbix_server: ZabbixServer) -> Seed:
    api = zabbix_server.api()
    gid = str(api.hostgroup.create(name=REDE)["groupids"][0])
    ogid = str(api.hostgroup.create(name=OTHER)["groupids"][0])
    seed = Seed(zabbix_server, gid, ogid)
    seed.excluded_templateid = str(api.template.create(
        host="FM excluded template", groups=[{"groupid": zabbix_server.template_group_id()}]
    )["templateids"][0])
    snmp = {"type": 2, "main": 1, "useip": 1, "ip": "10.9.9.9", "dns": "", "port": "161",
            "details": {"version": 2, "community": "public"}}
    # the first interface is SNMP: the agent interface's IP must be the one selected
    _create_host(api, seed, "MLAR-LOJA001-PDV201", gid, [snmp, agent("127.0.0.21")],
                 tags={"tipo": "PDV", "env": "prod"}, notes="root,se,cret,2222")
    _create_host(api, seed, "MLAR-LOJA001-PDV202", gid, [agent("127.0.0.22")], tags={"env": "dev"}, notes="")
    _create_host(api, seed, "MLAR-LOJA002-SELF301", gid, [agent("127.0.0.23", port="10070")], tags={"PDV_TIPO": "SELF"},
                 notes="operador,p@ss")
    _create_host(api, seed, "MLAR-LOJA002-CONCENTRADOR", gid, [agent("127.0.0.24", port="{$FM.AGENT.PORT}")])
    _create_host(api, seed, "MLAR-LOJA005-CAIXA01", gid, [agent("127.0.0.25")], tags={"PDV_TIPO": "PDV_PADRAO"})
    _create_host(api, seed, "MLAR-LOJA003-PDV201", gid, [agent("127.0.0.26")], status=1)  # not monitored
    _create_host(api, seed, "MLAR-LOJA003-PDV202", gid, [agent("127.0.0.27")],
                 templates=[seed.excluded_templateid])
    _create_host(api, seed, "MLAR-LOJA004-BALANCA01", gid, [agent("127.0.0.28")], tags={"tipo": "BALANCA"})
    _create_host(api, seed, "MLAR-PROXY", gid, [agent("127.0.0.29")])
    _create_host(api, seed, "OUTRA-LOJA001-PDV201", ogid, [agent("127.0.0.31")])
    _create_host(api, seed, "MLAR-LOJA009-PDV201", ogid, [agent("127.0.0.32")])  # our prefix, other group

    # agent availability: a passive agent item polling a closed port makes the interface
    # "unavailable" (2) within seconds (the server runs with UnreachablePeriod=1)
    pdv202 = seed.hostids["MLAR-LOJA001-PDV202"]
    itf = api.hostinterface.get(hostids=[pdv202], output=["interfaceid"])[0]["interfaceid"]
    api.item.create(hostid=pdv202, name="agent ping", key_="agent.ping", type=0, value_type=3,
                    interfaceid=itf, delay="2s")

    # a trigger in PROBLEM state on PDV202 and one in OK state on PDV201
    problem_host = "MLAR-LOJA001-PDV202"
    for host, value in ((problem_host, "1"), ("MLAR-LOJA001-PDV201", "0")):
        api.item.create(hostid=seed.hostids[host], name="fm test problem", key_=PROBLEM_KEY, type=2,
                        value_type=3, history="1d")
        tid = str(api.trigger.create(description=PROBLEM_TRIGGER,
                                     expression=f"last(/{host}/{PROBLEM_KEY})=1", priority=2)["triggerids"][0])
        if value == "1":
            seed.problem_triggerid = tid
        else:
            seed.ok_triggerid = tid
        zabbix_server.send_until_processed(host, PROBLEM_KEY, value)

    # a value processed before the server's config cache held the new trigger leaves the trigger
    # unevaluated until the next value: send the problem again until the trigger has seen one
    def in_problem() -> Any:
        zabbix_server.send_until_processed(problem_host, PROBLEM_KEY, "1")
        return api.trigger.get(triggerids=[seed.problem_triggerid], filter={"value": 1}, output=["triggerid"])

    wait_for("the seeded trigger to enter PROBLEM", in_problem)
    return seed
