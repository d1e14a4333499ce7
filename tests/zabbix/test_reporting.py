"""Result reporting to real Zabbix 6.0 and 7.0: setup command, sender values in item history."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flageemonitor import __version__
from flageemonitor.core.results import HostResult, RunReport, Status
from flageemonitor.proxy import reporting
from flageemonitor.proxy.cli.app import app
from flageemonitor.proxy.zabbix import items as keys
from tests.fixtures.zabbix import ZabbixServer, wait_for
from tests.zabbix.conftest import agent

pytestmark = [pytest.mark.zabbix, pytest.mark.slow]

REDE = "RPT"
HOSTS = ("RPT-LOJA001-PDV201", "RPT-LOJA001-PDV202")


def _config_file(tmp_path: Path, server: ZabbixServer, **extra: Any) -> Path:
    data = {"PARAM_REDE": REDE, "PARAM_ZABBIX_URL": server.api_url, "PARAM_ZABBIX_USER": server.user,
            "PARAM_ZABBIX_PASSWORD": server.password, **extra}
    path = tmp_path / "config_bot.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def reporting_network(zabbix_server: ZabbixServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The RPT network with two endpoints, and the reporting setup applied through the CLI."""
    api = zabbix_server.api()
    gid = api.hostgroup.create(name=REDE)["groupids"][0]
    ids = {}
    for n, name in enumerate(HOSTS):
        ids[name] = api.host.create(host=name, groups=[{"groupid": gid}], interfaces=[agent(f"127.0.1.{n + 1}")])[
            "hostids"][0]
    return ids


def _setup(server: ZabbixServer, tmp_path: Path, *extra: str) -> Any:
    result = CliRunner().invoke(app, ["zabbix", "setup-reporting", "--json", "--config",
                                      str(_config_file(tmp_path, server)), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_setup_reporting_creates_items_and_proxy_host_once(
    zabbix_server: ZabbixServer, reporting_network: dict[str, str], tmp_path: Path
) -> None:
    api = zabbix_server.api()
    planned = _setup(zabbix_server, tmp_path, "--dry-run")  # templates may exist already (other tests)
    assert planned["dry_run"] and f"would create host '{REDE}-PROXY' linked to {keys.PROXY_TEMPLATE!r}" in planned[
        "changes"]
    assert any(c.startswith("would link") and "2 endpoint hosts" in c for c in planned["changes"]), planned
    assert api.host.get(filter={"host": [f"{REDE}-PROXY"]}) == []  # dry run changed nothing

    done = _setup(zabbix_server, tmp_path)
    assert any("link" in c and "2 endpoint hosts" in c for c in done["changes"]), done
    again = _setup(zabbix_server, tmp_path)
    assert again["changes"] == []  # idempotent

    tpl = api.template.get(filter={"host": [keys.ENDPOINT_TEMPLATE]}, output=["templateid"])[0]["templateid"]
    tpl_keys = {i["key_"] for i in api.item.get(templateids=[tpl], output=["key_"])}
    assert keys.status_key("test_endpoint_connection") in tpl_keys
    assert {i.key for i in keys.endpoint_items()} == tpl_keys
    proxy = api.host.get(filter={"host": [f"{REDE}-PROXY"]}, selectParentTemplates=["host"], output=["hostid"])
    assert [t["host"] for t in proxy[0]["parentTemplates"]] == [keys.PROXY_TEMPLATE]
    for hostid in reporting_network.values():
        linked = api.host.get(hostids=[hostid], selectParentTemplates=["host"], output=["hostid"])[0]
        assert keys.ENDPOINT_TEMPLATE in [t["host"] for t in linked["parentTemplates"]]


def _report(dry_run: bool = False) -> RunReport:
    return RunReport(
        requested="pdv_test_connection", canonical="test_endpoint_connection", provider="arius",
        action_version="1.0.0", dry_run=dry_run, started_at="2026-11-27T00:00:00Z", duration_s=1.5,
        hosts=[
            HostResult(HOSTS[0], "127.0.1.1", Status.CHANGED, duration_s=0.25, detail='said "hi", then {bye}',
                       changed=True, changes=[{"kind": "restart", "summary": "restart agent"}]),
            HostResult(HOSTS[1], "127.0.1.2", Status.UNREACHABLE, duration_s=3.0, detail="connection refused"),
        ],
    )


def test_published_results_land_in_item_history(
    zabbix_server: ZabbixServer, reporting_network: dict[str, str], tmp_path: Path
) -> None:
    _setup(zabbix_server, tmp_path)
    cfg = zabbix_server.config(REDE, PARAM_ZABBIX_REPORTING=True, CONFIG_VERSION=7,
                               PARAM_ZABBIX_SENDER_SERVER=zabbix_server.trapper_host,
                               PARAM_ZABBIX_SENDER_PORT=zabbix_server.trapper_port)
    # items created moments ago are accepted once the server's config cache reloads
    zabbix_server.send_until_processed(HOSTS[0], keys.failed_key("diagnose_env"), "0")
    reporting.publish(_report(), cfg)

    action = "test_endpoint_connection"
    status = wait_for("the status value", lambda: zabbix_server.last_value(HOSTS[0], keys.status_key(action)))
    assert json.loads(status) == {"status": "changed", "changed": True, "changes": 1,
                                  "detail": 'said "hi", then {bye}',
                                  "started_at": "2026-11-27T00:00:00Z", "version": "1.0.0"}
    assert zabbix_server.last_value(HOSTS[0], keys.failed_key(action)) == "0"
    assert zabbix_server.last_value(HOSTS[1], keys.failed_key(action)) == "1"
    assert float(zabbix_server.last_value(HOSTS[1], keys.duration_key(action)) or "nan") == 3.0
    heartbeat = json.loads(zabbix_server.last_value(f"{REDE}-PROXY", keys.HEARTBEAT_KEY) or "{}")
    assert heartbeat["version"] == __version__ and heartbeat["config_version"] == 7
    assert heartbeat["last_run"]["summary"]["unreachable"] == 1
    assert zabbix_server.last_value(f"{REDE}-PROXY", keys.failures_key(action)) == "1"


def test_sending_failure_is_logged_and_never_raises(
    zabbix_server: ZabbixServer, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = zabbix_server.config(REDE, PARAM_ZABBIX_REPORTING=True, PARAM_ZABBIX_SENDER_SERVER="127.0.0.1",
                               PARAM_ZABBIX_SENDER_PORT=port, PARAM_ZABBIX_PASSWORD="s3cr3t-pw")
    caplog.set_level(logging.INFO)
    reporting.publish(_report(), cfg)
    assert "failed" in caplog.text and str(port) in caplog.text
    assert "s3cr3t-pw" not in caplog.text


def test_refused_values_are_logged_not_raised(
    zabbix_server: ZabbixServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = zabbix_server.config("NOSUCH", PARAM_ZABBIX_REPORTING=True,
                               PARAM_ZABBIX_SENDER_SERVER=zabbix_server.trapper_host,
                               PARAM_ZABBIX_SENDER_PORT=zabbix_server.trapper_port)
    caplog.set_level(logging.INFO)
    reporting.publish(_report(), cfg)
    assert "refused" in caplog.text and "setup-reporting" in caplog.text


def test_zabbix_check_reports_version_and_endpoint_count(
    zabbix_server: ZabbixServer, reporting_network: dict[str, str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["zabbix", "check", "--json", "--config",
                                      str(_config_file(tmp_path, zabbix_server))])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["api_version"] == ".".join(zabbix_server.version.split(".")[:2])
    assert out["endpoints"] == 2 and out["auth"] == "password" and zabbix_server.password not in result.stdout
