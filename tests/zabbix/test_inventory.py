"""Host selection from real Zabbix 6.0 and 7.0 servers (each test runs on both)."""

from __future__ import annotations

import logging

import pytest

from flageemonitor.core.errors import InventoryError
from flageemonitor.core.hosts import HostFilter
from flageemonitor.proxy.inventory import open_inventory
from flageemonitor.proxy.inventory.zabbix import ZabbixInventory
from tests.fixtures.zabbix import wait_for
from tests.zabbix.conftest import PROBLEM_TRIGGER, REDE, Seed

pytestmark = [pytest.mark.zabbix, pytest.mark.slow]

ENDPOINTS = {
    "MLAR-LOJA001-PDV201",
    "MLAR-LOJA001-PDV202",
    "MLAR-LOJA002-SELF301",
    "MLAR-LOJA002-CONCENTRADOR",
    "MLAR-LOJA005-CAIXA01",
    "MLAR-LOJA003-PDV202",
}


def names(seed: Seed, flt: HostFilter | None = None, **cfg: object) -> list[str]:
    inv = ZabbixInventory(seed.server.config(REDE, **cfg))
    return [h.name for h in inv.select(flt or HostFilter())]


def test_default_selection_is_the_network_group_monitored_endpoints_only(seeded: Seed) -> None:
    selected = names(seeded)
    assert set(selected) == ENDPOINTS
    assert selected == sorted(selected)
    # other network, our prefix outside our group, disabled host, proxy host, non-endpoint type
    for absent in ("OUTRA-LOJA001-PDV201", "MLAR-LOJA009-PDV201", "MLAR-LOJA003-PDV201", "MLAR-PROXY",
                   "MLAR-LOJA004-BALANCA01"):
        assert absent not in selected


def test_inventory_kind_zabbix_is_opened_from_the_config(seeded: Seed) -> None:
    config = seeded.server.config(REDE)
    assert config.inventory_kind == "zabbix"
    assert {h.name for h in open_inventory(config).select(HostFilter())} == ENDPOINTS


def test_hostgroup_override_scopes_to_that_group(seeded: Seed) -> None:
    assert set(names(seeded, PARAM_ZABBIX_HOSTGROUP="OUTRA")) == {"OUTRA-LOJA001-PDV201", "MLAR-LOJA009-PDV201"}


def test_exclude_template_ids_drop_linked_hosts(seeded: Seed) -> None:
    selected = names(seeded, EXCLUDE_TEMPLATE_IDS=[seeded.excluded_templateid])
    assert set(selected) == ENDPOINTS - {"MLAR-LOJA003-PDV202"}


def test_address_is_the_main_agent_interface_and_credentials_come_from_notes(seeded: Seed) -> None:
    cfg = {"PARAM_SSH_USER": "suporte", "PARAM_SSH_PASSWORD": "padrao", "PARAM_SSH_KEY_FILE": "/keys/id_ed25519"}
    inv = ZabbixInventory(seeded.server.config(REDE, **cfg))
    hosts = {h.name: h for h in inv.select(HostFilter())}
    pdv201 = hosts["MLAR-LOJA001-PDV201"]
    assert pdv201.ip == "127.0.0.21"  # the SNMP interface (10.9.9.9) comes first
    assert (pdv201.user, pdv201.password, pdv201.port) == ("root", "se,cret", 2222)
    assert pdv201.key_file == "/keys/id_ed25519"
    assert pdv201.inventory_id == seeded.hostids["MLAR-LOJA001-PDV201"]
    assert (pdv201.loja, pdv201.code, pdv201.endpoint_type, pdv201.rede) == (1, "201", "PDV", "MLAR")
    pdv202 = hosts["MLAR-LOJA001-PDV202"]  # empty notes: config defaults
    assert (pdv202.user, pdv202.password, pdv202.port) == ("suporte", "padrao", 22)
    self301 = hosts["MLAR-LOJA002-SELF301"]
    assert (self301.user, self301.password, self301.port) == ("operador", "p@ss", 22)


def test_agent_port_is_the_main_agent_interface_port(seeded: Seed) -> None:
    inv = ZabbixInventory(seeded.server.config(REDE, PARAM_ZABBIX_PORT=10055))
    hosts = {h.name: h for h in inv.select(HostFilter())}
    assert hosts["MLAR-LOJA001-PDV201"].agent_port == 10050
    assert hosts["MLAR-LOJA002-SELF301"].agent_port == 10070
    assert hosts["MLAR-LOJA002-CONCENTRADOR"].agent_port == 10055  # a user macro: the config's default


def test_endpoint_type_comes_from_a_type_tag_before_the_name(seeded: Seed) -> None:
    hosts = {h.name: h for h in ZabbixInventory(seeded.server.config(REDE)).select(HostFilter())}
    assert hosts["MLAR-LOJA002-SELF301"].endpoint_type == "SELF"
    assert hosts["MLAR-LOJA005-CAIXA01"].endpoint_type == "PDV"  # PDV_TIPO=PDV_PADRAO
    assert hosts["MLAR-LOJA002-CONCENTRADOR"].endpoint_type == "CONCENTRADOR"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HostFilter(loja="LOJA001"), {"MLAR-LOJA001-PDV201", "MLAR-LOJA001-PDV202"}),
        (HostFilter(loja="2"), {"MLAR-LOJA002-SELF301", "MLAR-LOJA002-CONCENTRADOR"}),
        (HostFilter(loja="1", pdv="PDV202"), {"MLAR-LOJA001-PDV202"}),
        (HostFilter(pdv="201"), {"MLAR-LOJA001-PDV201"}),
        (HostFilter(pdv_ip=("127.0.0.23", "127.0.0.24")), {"MLAR-LOJA002-SELF301", "MLAR-LOJA002-CONCENTRADOR"}),
        (HostFilter(host_glob="*-self*"), {"MLAR-LOJA002-SELF301"}),
        (HostFilter(tags={"env": "prod"}), {"MLAR-LOJA001-PDV201"}),
        (HostFilter(tags={"env": "dev"}, loja="1"), {"MLAR-LOJA001-PDV202"}),
        (HostFilter(tags={"env": "none"}), set()),
        (HostFilter(limit=2), {"MLAR-LOJA001-PDV201", "MLAR-LOJA001-PDV202"}),
    ],
    ids=["loja", "loja-number", "loja-pdv", "pdv", "pdv-ip", "host-glob", "tag", "tag-and-loja", "tag-none",
         "limit"],
)
def test_filters_select_exactly_the_matching_hosts(seeded: Seed, flt: HostFilter, expected: set[str]) -> None:
    assert set(names(seeded, flt)) == expected


def test_trigger_filters_select_hosts_with_that_trigger_in_problem(seeded: Seed) -> None:
    assert names(seeded, HostFilter(trigger_ids=(seeded.problem_triggerid,))) == ["MLAR-LOJA001-PDV202"]
    # the same trigger exists on PDV201 in OK state: not selected, whether the name is given as
    # written (with its macro) or as the frontend shows it
    assert names(seeded, HostFilter(trigger_name=PROBLEM_TRIGGER)) == ["MLAR-LOJA001-PDV202"]
    shown = PROBLEM_TRIGGER.replace("{HOST.NAME}", "MLAR-LOJA001-PDV202")
    assert names(seeded, HostFilter(trigger_name=shown)) == ["MLAR-LOJA001-PDV202"]
    assert names(seeded, HostFilter(trigger_name="no such trigger")) == []
    assert names(seeded, HostFilter(trigger_ids=(seeded.ok_triggerid,))) == []


def test_agent_status_is_read_from_the_main_agent_interface(seeded: Seed) -> None:
    # PDV202 has an agent item polling a closed port: the server marks its interface unavailable
    wait_for("PDV202's agent interface to become unavailable",
             lambda: names(seeded, HostFilter(agent_status=2)) == ["MLAR-LOJA001-PDV202"], deadline_s=90)
    unknown = set(names(seeded, HostFilter(agent_status=0)))
    assert unknown == ENDPOINTS - {"MLAR-LOJA001-PDV202"}
    assert names(seeded, HostFilter(agent_status=1)) == []


def test_missing_host_group_is_an_error_not_an_empty_selection(seeded: Seed) -> None:
    with pytest.raises(InventoryError, match="host group 'NOPE' not found"):
        names(seeded, PARAM_ZABBIX_HOSTGROUP="NOPE")


def test_rejected_credentials_fail_clearly_without_leaking_them(
    seeded: Seed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_token = "f00dfeed" * 8
    cfg = seeded.server.config(REDE, PARAM_TOKEN=secret_token, PARAM_ZABBIX_USER=None, PARAM_ZABBIX_PASSWORD=None)
    with pytest.raises(InventoryError) as err:
        ZabbixInventory(cfg).select(HostFilter())
    assert "authentication rejected" in str(err.value)
    assert secret_token not in str(err.value) and secret_token not in caplog.text
    bad_pw = "Wr0ng,pass-word!"
    cfg = seeded.server.config(REDE, PARAM_ZABBIX_PASSWORD=bad_pw)
    with pytest.raises(InventoryError) as err:
        ZabbixInventory(cfg).select(HostFilter())
    assert bad_pw not in str(err.value) and bad_pw not in caplog.text


def test_api_token_authenticates_like_a_password(seeded: Seed) -> None:
    api = seeded.server.api()
    uid = api.user.get(filter={"username": "Admin"}, output=["userid"])[0]["userid"]
    tokid = api.token.create(name=f"fm-inventory-{seeded.server.label}", userid=uid)["tokenids"][0]
    token = api.token.generate([tokid])[0]["token"]
    cfg = seeded.server.config(REDE, PARAM_TOKEN=token, PARAM_ZABBIX_USER=None, PARAM_ZABBIX_PASSWORD=None)
    assert {h.name for h in ZabbixInventory(cfg).select(HostFilter())} == ENDPOINTS


def test_unreachable_api_is_an_error(seeded: Seed) -> None:
    cfg = seeded.server.config(REDE, PARAM_ZABBIX_URL="http://127.0.0.1:1/api_jsonrpc.php")
    with pytest.raises(InventoryError, match=r"127\.0\.0\.1:1/"):
        ZabbixInventory(cfg).select(HostFilter())


def test_json_rpc_error_becomes_a_named_failure(seeded: Seed) -> None:
    from flageemonitor.proxy.zabbix.client import ZabbixError, connect

    with connect(seeded.server.config(REDE)) as client, pytest.raises(ZabbixError) as err:
        client.call("host.get", {"output": ["hostid"], "sortfield": "nonsense"})
    assert isinstance(err.value, InventoryError)
    assert str(err.value).startswith("Zabbix API host.get failed:") and "nonsense" in str(err.value)
