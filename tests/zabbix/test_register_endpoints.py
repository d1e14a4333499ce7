"""`register_endpoints` against real Zabbix 6.0 and 7.0: report, create, rename, fix, never duplicate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.actions.register_endpoints import Endpoint, run_reconciliation
from flageemonitor.proxy.pipeline import RunRequest, execute
from flageemonitor.proxy.zabbix.compat import ApiVersion, Compat
from tests.fixtures.zabbix import ZabbixServer
from tests.zabbix.conftest import agent

pytestmark = [pytest.mark.zabbix, pytest.mark.slow]

REDE = "REG"


@pytest.fixture(scope="session")
def reg(zabbix_server: ZabbixServer) -> dict[str, Any]:
    api = zabbix_server.api()
    compat = Compat(ApiVersion.parse(zabbix_server.version))
    gid = api.hostgroup.create(name=REDE)["groupids"][0]
    other = api.hostgroup.create(name="REG-OTHER")["groupids"][0]
    for name, ip, group in [
        ("REG-LOJA001-PDV201", "127.0.2.1", gid),    # ok
        ("REG-LOJA001-PDV202", "127.0.2.99", gid),   # the list says 127.0.2.2
        ("REG-LOJA001-CAIXA7", "127.0.2.3", gid),    # the list knows 127.0.2.3 as PDV203
        ("REG-LOJA002-PDV201", "127.0.2.50", gid),   # not in the list
        ("REG-LOJA001-PDV207", "127.0.2.7", other),  # the name exists outside the group
    ]:
        api.host.create(host=name, groups=[{"groupid": group}], interfaces=[agent(ip)])
    proxyid = api.proxy.create(**compat.proxy_create_params("reg-proxy"))["proxyids"][0]
    templateid = api.template.create(host="FM register template",
                                     groups=[{"groupid": zabbix_server.template_group_id()}])["templateids"][0]
    return {"proxyid": str(proxyid), "templateid": str(templateid), "compat": compat}


def _config(server: ZabbixServer, reg: dict[str, Any]) -> BotConfig:
    return server.config(REDE, PARAM_ZABBIX_PROXYID=reg["proxyid"], PARAM_TEMPLATES=[reg["templateid"]],
                         PARAM_ZABBIX_PORT=10055)


LIST = [
    Endpoint(1, "201", "127.0.2.1"),
    Endpoint(1, "202", "127.0.2.2"),
    Endpoint(1, "203", "127.0.2.3"),
    Endpoint(1, "204", "127.0.2.4", sat_fabricante="Bematech"),
    Endpoint(3, "301", "127.0.2.5", "SELF"),
    Endpoint(1, "206", "127.0.2.99"),  # its IP is PDV202's in Zabbix: a conflict, never a duplicate
]


def _host(server: ZabbixServer, name: str, compat: Compat) -> list[dict[str, Any]]:
    return list(server.api().host.get(
        filter={"host": [name]}, output=["hostid", "host", "name", *compat.host_proxy_output()],
        selectInterfaces=["ip", "port", "type", "main"], selectParentTemplates=["templateid"],
        selectTags=["tag", "value"], selectMacros=["macro", "value"]))


def test_register_plans_then_applies_then_changes_nothing_more(zabbix_server: ZabbixServer,
                                                                reg: dict[str, Any]) -> None:
    cfg, compat = _config(zabbix_server, reg), reg["compat"]
    api = zabbix_server.api()
    before = api.host.get(countOutput=True)

    plan = run_reconciliation(cfg, LIST, autoregister=True, fix_divergent=True, dry_run=True)
    d = plan.data
    assert d["ok"] == ["REG-LOJA001-PDV201"]
    assert d["missing"] == [{"name": "REG-LOJA001-PDV204", "ip": "127.0.2.4"},
                            {"name": "REG-LOJA003-SELF301", "ip": "127.0.2.5"}]
    assert d["renamed"] == [{"name": "REG-LOJA001-PDV203", "ip": "127.0.2.3", "current": "REG-LOJA001-CAIXA7"}]
    assert d["ip_divergent"] == [{"name": "REG-LOJA001-PDV202", "ip": "127.0.2.2", "zabbix_ip": "127.0.2.99"}]
    assert d["zabbix_only"] == ["REG-LOJA002-PDV201"]
    assert [c["name"] for c in d["conflicts"]] == ["REG-LOJA001-PDV206"]
    assert sorted(c["op"] for c in d["changes"]) == ["create", "create", "rename", "set_ip"]
    assert not any(c["applied"] for c in d["changes"])
    assert api.host.get(countOutput=True) == before  # dry run changed nothing

    done = run_reconciliation(cfg, LIST, autoregister=True, fix_divergent=True, dry_run=False)
    assert done.ok, done.data["errors"]
    assert all(c["applied"] for c in done.data["changes"])

    created = _host(zabbix_server, "REG-LOJA001-PDV204", compat)
    assert len(created) == 1
    h = created[0]
    # read back: Zabbix 7 would silently ignore the 6.0 proxy field
    assert compat.proxy_of(h) == reg["proxyid"]
    assert h["name"] == "REG (LOJA001) PDV204"
    assert [(i["ip"], i["port"], str(i["type"]), str(i["main"])) for i in h["interfaces"]] == [
        ("127.0.2.4", "10055", "1", "1")]
    assert [t["templateid"] for t in h["parentTemplates"]] == [reg["templateid"]]
    assert {t["tag"]: t["value"] for t in h["tags"]} == {"PDV_TIPO": "PDV_PADRAO"}
    assert {m["macro"]: m["value"] for m in h["macros"]} == {"{$SAT_FABRICANTE}": "Bematech"}
    self301 = _host(zabbix_server, "REG-LOJA003-SELF301", compat)[0]
    assert {t["tag"]: t["value"] for t in self301["tags"]} == {"PDV_TIPO": "SELF"}
    assert _host(zabbix_server, "REG-LOJA001-CAIXA7", compat) == []
    assert _host(zabbix_server, "REG-LOJA001-PDV203", compat)[0]["name"] == "REG (LOJA001) PDV203"
    assert _host(zabbix_server, "REG-LOJA001-PDV202", compat)[0]["interfaces"][0]["ip"] == "127.0.2.2"

    # PDV202's fix freed 127.0.2.99: the next run creates PDV206 there, and the one after it
    # has nothing left to do
    second = run_reconciliation(cfg, LIST, autoregister=True, fix_divergent=True, dry_run=False)
    assert [(c["op"], c["host"]) for c in second.data["changes"]] == [("create", "REG-LOJA001-PDV206")]
    again = run_reconciliation(cfg, LIST, autoregister=True, fix_divergent=True, dry_run=False)
    assert again.data["changes"] == [] and again.data["conflicts"] == []
    assert again.data["missing"] == [] and again.data["renamed"] == [] and again.data["ip_divergent"] == []
    for name in ("REG-LOJA001-PDV204", "REG-LOJA003-SELF301", "REG-LOJA001-PDV203", "REG-LOJA001-PDV206"):
        assert len(_host(zabbix_server, name, compat)) == 1  # never a duplicate


def test_register_never_creates_a_name_that_exists_in_another_group(zabbix_server: ZabbixServer,
                                                                     reg: dict[str, Any]) -> None:
    cfg = _config(zabbix_server, reg)
    out = run_reconciliation(cfg, [Endpoint(1, "207", "127.0.2.7")], autoregister=True, fix_divergent=False,
                             dry_run=False)
    assert not out.ok and "exists outside the group" in out.data["errors"][0]
    assert len(_host(zabbix_server, "REG-LOJA001-PDV207", reg["compat"])) == 1


def test_register_by_legacy_alias_through_the_pipeline_with_a_file(
    zabbix_server: ZabbixServer, reg: dict[str, Any], tmp_path: Path
) -> None:
    cfg = _config(zabbix_server, reg)
    listing = tmp_path / "endpoints.yaml"
    listing.write_text(yaml.safe_dump({"endpoints": [{"loja": 9, "pdv": 201, "ip": "127.0.2.91"},
                                                     {"loja": 9, "pdv": 202, "ip": "0.0.0.0"}]}))
    request = RunRequest(action="pdv_auto_register", dry_run=False,
                         args={"endpoints": str(listing), "autoregister": "1"})
    report = asyncio.run(execute(request, cfg, state_dir=tmp_path / "state"))
    assert report.canonical == "register_endpoints" and not report.local_failed, report.local
    assert report.local is not None and report.local["missing"] == [{"name": "REG-LOJA009-PDV201",
                                                                     "ip": "127.0.2.91"}]
    assert len(_host(zabbix_server, "REG-LOJA009-PDV201", reg["compat"])) == 1
    # without a list the action says what to do instead of guessing
    report = asyncio.run(execute(RunRequest(action="register_hosts", dry_run=True), cfg,
                                 state_dir=tmp_path / "state"))
    assert report.local_failed and "--arg endpoints=FILE" in str(report.local)


def test_register_accepts_the_original_command_line_flags(
    zabbix_server: ZabbixServer, reg: dict[str, Any], tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from flageemonitor.proxy.cli.app import app

    config_file = tmp_path / "config_bot.json"
    config_file.write_text(json.dumps(_config(zabbix_server, reg).raw()))
    listing = tmp_path / "endpoints.yaml"
    listing.write_text(yaml.safe_dump({"endpoints": [{"loja": 8, "pdv": 201, "ip": "127.0.2.81"}]}))
    argv = ["run", "pdv_auto_register", "--config", str(config_file), "--endpoints", str(listing),
            "--list-missing", "--json"]
    planned = CliRunner().invoke(app, argv, env={"FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")})
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["local"]["missing"] == [{"name": "REG-LOJA008-PDV201", "ip": "127.0.2.81"}]
    assert _host(zabbix_server, "REG-LOJA008-PDV201", reg["compat"]) == []  # reported, not created
    created = CliRunner().invoke(app, [*argv, "--autoregister"],
                                 env={"FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")})
    assert created.exit_code == 0, created.output
    assert len(_host(zabbix_server, "REG-LOJA008-PDV201", reg["compat"])) == 1
