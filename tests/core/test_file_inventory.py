"""The YAML file inventory: defaults, scoping to the network, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import InventoryError
from flageemonitor.core.hosts import HostFilter
from flageemonitor.proxy.inventory import open_inventory

CONFIG = BotConfig(PARAM_REDE="REDE1", PARAM_SSH_USER="operador", PARAM_SSH_PASSWORD="default-pw")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_hosts_get_defaults_from_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, """
hosts:
  - {name: REDE1-LOJA001-PDV201, ip: 127.0.0.2}
  - {name: REDE1-LOJA001-PDV202, ip: 127.0.0.3, port: 2222, user: root, key_file: /k, provider: zanthus,
     tags: {tipo: PDV}}
""")
    hosts = open_inventory(CONFIG, path).select(HostFilter())
    first, second = hosts
    assert (first.user, first.password, first.port) == ("operador", "default-pw", 22)
    assert (first.rede, first.loja) == ("REDE1", 1)
    assert (second.user, second.port, second.key_file, second.provider) == ("root", 2222, "/k", "zanthus")
    assert first.agent_port == 10050  # PARAM_ZABBIX_PORT's default


def test_agent_port_comes_from_the_host_else_from_the_config(tmp_path: Path) -> None:
    path = write(tmp_path, """
hosts:
  - {name: REDE1-LOJA001-PDV201, ip: 127.0.0.2, agent_port: 20050}
  - {name: REDE1-LOJA001-PDV202, ip: 127.0.0.3}
""")
    config = CONFIG.model_copy(update={"PARAM_ZABBIX_PORT": 10070})
    first, second = open_inventory(config, path).select(HostFilter())
    assert (first.agent_port, second.agent_port) == (20050, 10070)


def test_selection_is_scoped_to_the_configured_network_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, """
hosts:
  - {name: REDE1-LOJA001-PDV201, ip: 127.0.0.2}
  - {name: REDE2-LOJA001-PDV201, ip: 127.0.0.3}
""")
    inventory = open_inventory(CONFIG, path)
    assert [h.name for h in inventory.select(HostFilter())] == ["REDE1-LOJA001-PDV201"]
    assert [h.name for h in inventory.select(HostFilter(rede="REDE2"))] == ["REDE2-LOJA001-PDV201"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hosts: [{ip: 1.2.3.4}]", "'name' is required"),
        ("hosts: [{name: A-LOJA001-PDV1}]", "'ip' is required"),
        ("hosts: [{name: A-LOJA001-PDV1, ip: 1.2.3.4, port: 0}]", "'port'"),
        ("hosts: [{name: A-LOJA001-PDV1, ip: 1.2.3.4, agent_port: 70000}]", "'agent_port' must be 1..65535"),
        ("hosts: [{name: A-LOJA001-PDV1, ip: 1.2.3.4, agent_port: '10050'}]", "'agent_port' must be 1..65535"),
        ("hosts: [{name: A-LOJA001-PDV1, ip: 1.2.3.4, pasword: x}]",
         "unknown keys pasword; accepted keys: agent_port, ip, key_file, name, password, port, provider, tags, user"),
        ("hosts: [{name: A, ip: 1.2.3.4}, {name: a, ip: 1.2.3.5}]", "listed twice"),
        ("nodes: []", "'hosts' list"),
        ("hosts: [unclosed", "not valid YAML"),
    ],
)
def test_bad_inventory_files_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        open_inventory(CONFIG, write(tmp_path, text)).select(HostFilter())


def test_missing_file_and_missing_source_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        open_inventory(CONFIG, tmp_path / "nope.yaml").select(HostFilter())
    with pytest.raises(InventoryError, match="no inventory"):
        open_inventory(CONFIG)
