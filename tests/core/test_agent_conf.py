"""The agent config: values validated before anything is built, the rendered text (pure)."""

from __future__ import annotations

import pytest

from flageemonitor.core.agent_conf import (
    AgentSettings,
    agent_hostname,
    agent_port,
    proxy_addresses,
    render,
    valid_address,
)
from flageemonitor.core.errors import ConfigInvalid


def test_render_has_the_originals_settings_and_ours() -> None:
    text = render(AgentSettings("10.1.2.3", "MLAR-LOJA001-PDV201", 10061))
    lines = text.splitlines()
    for line in ("Server=10.1.2.3", "ServerActive=10.1.2.3", "Hostname=MLAR-LOJA001-PDV201", "ListenPort=10061",
                 "LogFile=/ariusmonitor/logs/zabbix_agentd.log", "PidFile=/ariusmonitor/logs/zabbix_agentd.pid",
                 "BufferSize=300", "AllowRoot=1", "Include=/ariusmonitor/conf/zabbix_agentd.conf.d/*",
                 "MaxLinesPerSecond=50", "UnsafeUserParameters=1", "Timeout=20"):
        assert line in lines
    assert text == render(AgentSettings("10.1.2.3", "MLAR-LOJA001-PDV201", 10061))  # deterministic


@pytest.mark.parametrize("value", ["10.0.0.1", "::1", "zbx-proxy.loja1.example", "10.0.0.1, 10.0.0.2", None])
def test_proxy_addresses_accepts_addresses_and_host_names(value: str | None) -> None:
    assert proxy_addresses(value) == (value or "127.0.0.1").replace(" ", "")


@pytest.mark.parametrize("value", ["$(touch /tmp/x)", "10.0.0.1; reboot", "10.0.0.1\nServer=evil", "a'b", "`id`",
                                   "host..name", "-x", " , "])
def test_hostile_proxy_addresses_are_refused(value: str) -> None:
    with pytest.raises(ConfigInvalid, match="PARAM_PROXY_IP"):
        proxy_addresses(value)


@pytest.mark.parametrize("name", ["X-LOJA001-PDV201$(id)", "X;rm", "X\nServer=1.2.3.4", "X'Y", 'X"Y', " X", ""])
def test_hostile_host_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="cannot be an agent Hostname"):
        agent_hostname(name)


def test_ports_and_addresses() -> None:
    assert agent_port(10050) == 10050
    for bad in (0, 65536, True, "10050"):
        with pytest.raises(ValueError):
            agent_port(bad)  # type: ignore[arg-type]
    assert valid_address("a-b.c") and not valid_address("a_b") and not valid_address("a.")
