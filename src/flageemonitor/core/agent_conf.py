"""The endpoint agent's `zabbix_agentd.conf`: validated values and the rendered text (pure).

Values reach a file the agent parses and shell commands the actions build, so each is checked
before anything is built: `Server`/`ServerActive` = `PARAM_PROXY_IP` (an IPv4/IPv6 address or a
host name, several separated by commas), `Hostname` = the technical name (Zabbix's allowed
characters), `ListenPort` = the host's agent interface port. The other settings are the
original's (reference §7.6).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from flageemonitor.core.errors import ConfigInvalid

ROOT = "/ariusmonitor"
CONF = f"{ROOT}/conf/zabbix_agentd.conf"
INCLUDE_DIR = f"{ROOT}/conf/zabbix_agentd.conf.d"
PIDFILE = f"{ROOT}/logs/zabbix_agentd.pid"
LOGFILE = f"{ROOT}/logs/zabbix_agentd.log"
DEFAULT_PROXY_IP = "127.0.0.1"

_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ZABBIX_HOSTNAME = re.compile(r"^[A-Za-z0-9._ -]{1,128}$")  # what Zabbix accepts as a host name


def valid_address(text: str) -> bool:
    """An IPv4/IPv6 address or an RFC 1123 host name."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    if len(text) > 253 or text.endswith("."):
        return False
    return all(_LABEL.match(label) for label in text.split("."))


def proxy_addresses(value: str | None) -> str:
    """`PARAM_PROXY_IP` as the agent's Server value; raises ConfigInvalid naming the bad part."""
    text = (value or DEFAULT_PROXY_IP).strip()
    parts = [p.strip() for p in text.split(",")]
    bad = [p for p in parts if not valid_address(p)]
    if bad or not parts:
        raise ConfigInvalid(f"PARAM_PROXY_IP: {bad[0] if bad else text!r} is not an address or host name")
    return ",".join(parts)


def agent_hostname(name: str) -> str:
    """The technical name as the agent's Hostname; raises ValueError for characters Zabbix
    refuses (quotes, `$`, `;`, newlines...)."""
    if not _ZABBIX_HOSTNAME.match(name) or name != name.strip():
        raise ValueError(f"host name {name!r} cannot be an agent Hostname (allowed: letters, digits, '.', '_', "
                         "'-', space)")
    return name


def agent_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"agent port {port!r} is not 1..65535")
    return port


@dataclass(frozen=True)
class AgentSettings:
    server: str
    hostname: str
    listen_port: int


def render(settings: AgentSettings) -> str:
    """The full `zabbix_agentd.conf` text (deterministic: same settings, same bytes)."""
    lines = [
        "# Managed by FlageeMonitor (update_endpoint_config): local changes are overwritten.",
        f"Server={settings.server}",
        f"ServerActive={settings.server}",
        f"Hostname={settings.hostname}",
        f"ListenPort={settings.listen_port}",
        f"LogFile={LOGFILE}",
        f"PidFile={PIDFILE}",
        "BufferSize=300",
        "AllowRoot=1",
        "MaxLinesPerSecond=50",
        "UnsafeUserParameters=1",
        "Timeout=20",
        f"Include={INCLUDE_DIR}/*",
    ]
    return "\n".join(lines) + "\n"
