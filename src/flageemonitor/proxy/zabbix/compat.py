"""Every difference between the Zabbix API versions we support (6.0 LTS and 7.0 LTS), in one place.

What changed between them, as seen on real servers:

- Agent availability lives on interfaces (`interface.available`) since 5.4; the host-level
  `available` filter the original proxy used is gone. Both 6.0 and 7.0 read it from the main agent
  interface.
- Proxy assignment: 6.0 writes `proxy_hostid` on the host; 7.0 writes `monitored_by`
  (0 server, 1 proxy, 2 proxy group) plus `proxyid`, and **silently ignores** `proxy_hostid`.
- Proxies themselves: 6.0 `proxy.create(host, status=5)`; 7.0 `proxy.create(name, operating_mode=0)`.
- Template groups: 6.0 puts templates in host groups; 6.2+ has `templategroup`.
- `user.login` takes `username` (not `user`) since 5.4; zabbix-utils picks it by version.
- API tokens are sent as `Authorization: Bearer` from 6.4; zabbix-utils handles that too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

AGENT_INTERFACE = 1  # interface type: 1 agent, 2 SNMP, 3 IPMI, 4 JMX

# interface.available: 0 unknown, 1 available, 2 unavailable (same on 6.0 and 7.0)
AGENT_STATUS_NAMES = {0: "unknown", 1: "available", 2: "unavailable"}


@dataclass(frozen=True)
class ApiVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ApiVersion:
        parts = str(text).split(".")
        try:
            return cls(int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
        except ValueError:
            raise ValueError(f"unrecognised Zabbix API version {text!r}") from None

    def at_least(self, major: int, minor: int = 0) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Compat:
    """Version-dependent request parameters and response readers."""

    version: ApiVersion

    @property
    def proxy_assignment_in_monitored_by(self) -> bool:
        return self.version.at_least(7, 0)

    # --- hosts and proxies
    def host_proxy_output(self) -> list[str]:
        """Host fields that say which proxy monitors it."""
        return ["monitored_by", "proxyid"] if self.proxy_assignment_in_monitored_by else ["proxy_hostid"]

    def host_proxy_params(self, proxyid: str | int | None) -> dict[str, Any]:
        """`host.create`/`host.update` fields assigning a proxy (None: monitored by the server)."""
        if self.proxy_assignment_in_monitored_by:
            if proxyid in (None, "", "0", 0):
                return {"monitored_by": 0}
            return {"monitored_by": 1, "proxyid": str(proxyid)}
        return {"proxy_hostid": "0" if proxyid in (None, "") else str(proxyid)}

    def proxy_of(self, host: Mapping[str, Any]) -> str | None:
        """The proxy id monitoring a host record, or None for the server."""
        if self.proxy_assignment_in_monitored_by:
            if str(host.get("monitored_by", "0")) != "1":
                return None
            value = host.get("proxyid")
        else:
            value = host.get("proxy_hostid")
        return None if value in (None, "", "0") else str(value)

    def proxy_create_params(self, name: str) -> dict[str, Any]:
        """An active proxy."""
        if self.version.at_least(7, 0):
            return {"name": name, "operating_mode": 0}
        return {"host": name, "status": 5}

    def proxy_name_field(self) -> str:
        return "name" if self.version.at_least(7, 0) else "host"

    # --- templates
    def template_group_api(self) -> str:
        """The API object holding template groups: `templategroup` (6.2+) or `hostgroup`."""
        return "templategroup" if self.version.at_least(6, 2) else "hostgroup"

    # --- interfaces and availability
    def interfaces_output(self) -> list[str]:
        return ["interfaceid", "type", "main", "useip", "ip", "dns", "port", "available"]

    @staticmethod
    def main_agent_interface(interfaces: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        """The main agent interface (type 1, main 1); never "the first interface"."""
        for itf in interfaces:
            if str(itf.get("type")) == str(AGENT_INTERFACE) and str(itf.get("main")) == "1":
                return itf
        return None

    def agent_status(self, interfaces: Sequence[Mapping[str, Any]]) -> int | None:
        """Agent availability from the main agent interface (the host-level field is gone)."""
        itf = self.main_agent_interface(interfaces)
        if itf is None or itf.get("available") in (None, ""):
            return None
        return int(itf["available"])

