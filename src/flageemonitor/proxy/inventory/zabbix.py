"""The Zabbix inventory source.

Selection, fixing what the original got wrong:

- **Scoped by default**: only hosts of the host group named after `PARAM_REDE`
  (`PARAM_ZABBIX_HOSTGROUP` overrides), never everything the token can see. A missing group is
  an error, not an empty list.
- Monitored hosts only (status 0); hosts linked to a template in `EXCLUDE_TEMPLATE_IDS` dropped.
- Endpoints only: the type PDV/SELF/CONCENTRADOR comes from a `PDV_TIPO`/`tipo`/`type` tag when
  it names one (`PDV_PADRAO` counts as PDV), else from the technical name.
- Address: the main agent interface (type 1, main 1), not the first interface; its port is the
  agent port (a user macro there, which the API does not resolve, gives `PARAM_ZABBIX_PORT`).
- Filters: `--loja`, `--pdv`, `--pdv-ip`, `--host`, `--tag k=v` (also sent to the API),
  `--agent-status` (read from the main agent interface: 0 unknown, 1 available, 2 unavailable),
  `--trigger-id` / `--trigger-name` (hosts with those triggers in PROBLEM state).
- SSH credentials from inventory notes (see `zabbix.credentials`), defaults from the config.
- Any API error raises InventoryError (ZabbixError).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import InventoryError
from flageemonitor.core.hosts import ENDPOINT_TYPES, Host, HostFilter
from flageemonitor.proxy.zabbix.client import ZabbixClient, connect
from flageemonitor.proxy.zabbix.credentials import DEFAULT_SSH_PORT, parse_notes

log = logging.getLogger("flageemonitor.inventory.zabbix")

TYPE_TAGS = ("pdv_tipo", "tipo", "type", "endpoint_type")
PROVIDER_TAGS = ("provider", "flageemonitor_provider")


def host_group_name(config: BotConfig) -> str:
    return (config.PARAM_ZABBIX_HOSTGROUP or config.PARAM_REDE).strip()


def endpoint_type_of(name: str, tags: Mapping[str, str], parsed_type: str | None) -> str | None:
    """PDV/SELF/CONCENTRADOR from a type tag naming one, else from the host name."""
    for key, value in tags.items():
        if key.lower() in TYPE_TAGS and value.strip():
            text = value.strip().upper()
            # a type tag naming something else (e.g. BALANCA) means "not an endpoint"
            return next((etype for etype in ENDPOINT_TYPES if text.startswith(etype)), None)
    if parsed_type:
        return parsed_type
    upper = name.upper()
    return next((t for t in ENDPOINT_TYPES if t in upper), None)


def find_group_id(client: ZabbixClient, name: str) -> str | None:
    groups = client.call("hostgroup.get", {"output": ["groupid", "name"], "filter": {"name": [name]}})
    return str(groups[0]["groupid"]) if groups else None


class ZabbixInventory:
    name = "zabbix"

    def __init__(self, config: BotConfig) -> None:
        self.config = config

    def select(self, filters: HostFilter) -> list[Host]:
        with connect(self.config) as client:
            return self.select_with(client, filters)

    def select_with(self, client: ZabbixClient, filters: HostFilter) -> list[Host]:
        group = host_group_name(self.config)
        groupid = find_group_id(client, group)
        if groupid is None:
            raise InventoryError(
                f"Zabbix host group {group!r} not found (it scopes the selection; "
                "set PARAM_ZABBIX_HOSTGROUP if the network's group has another name)"
            )
        params: dict[str, Any] = {
            "output": ["hostid", "host", "name", "status"],
            "groupids": [groupid],
            "filter": {"status": "0"},
            "selectInterfaces": client.compat.interfaces_output(),
            "selectTags": ["tag", "value"],
            "selectInventory": ["notes"],
            "selectParentTemplates": ["templateid"],
            "sortfield": "host",
        }
        if filters.tags:
            params["evaltype"] = 0
            params["tags"] = [{"tag": k, "value": v, "operator": 1} for k, v in filters.tags.items()]
        if filters.trigger_ids or filters.trigger_name:
            hostids = self._problem_hostids(client, groupid, filters)
            if not hostids:
                return []
            params["hostids"] = sorted(hostids)
        records = client.call("host.get", params)
        hosts = [h for h in (self._host(client, r, filters) for r in records) if h is not None]
        return filters.apply(hosts)

    def _problem_hostids(self, client: ZabbixClient, groupid: str, filters: HostFilter) -> set[str]:
        """Hosts of the group with one of the given triggers in PROBLEM state (value 1)."""
        hostids: set[str] = set()
        base: dict[str, Any] = {
            "output": ["triggerid", "description"],
            "groupids": [groupid],
            "selectHosts": ["hostid"],
            "filter": {"value": 1},
            "monitored": True,
        }
        if filters.trigger_ids:
            for t in client.call("trigger.get", {**base, "triggerids": list(filters.trigger_ids)}):
                hostids.update(str(h["hostid"]) for h in t.get("hosts", []))
        if filters.trigger_name:
            # the name as written (macros unexpanded) or as shown in the frontend (expanded)
            wanted = filters.trigger_name.strip()
            raw = client.call("trigger.get", {**base, "filter": {"value": 1, "description": [wanted]}})
            expanded = client.call("trigger.get", {**base, "expandDescription": True})
            for t in [*raw, *(t for t in expanded if str(t.get("description", "")).strip() == wanted)]:
                hostids.update(str(h["hostid"]) for h in t.get("hosts", []))
        return hostids

    def _agent_port(self, itf: Mapping[str, Any]) -> int:
        text = str(itf.get("port", "")).strip()
        if text.isdigit() and 0 < int(text) < 65536:
            return int(text)
        return self.config.PARAM_ZABBIX_PORT

    def _host(self, client: ZabbixClient, rec: Mapping[str, Any], filters: HostFilter) -> Host | None:
        name = str(rec["host"])
        excluded = {str(t) for t in self.config.EXCLUDE_TEMPLATE_IDS}
        if excluded and any(str(t.get("templateid")) in excluded for t in rec.get("parentTemplates", [])):
            return None
        tags = {str(t["tag"]): str(t.get("value", "")) for t in rec.get("tags", [])}
        interfaces = rec.get("interfaces", [])
        itf = client.compat.main_agent_interface(interfaces)
        if itf is None:
            log.warning("Zabbix host %s has no main agent interface: not selected", name)
            return None
        if filters.agent_status is not None and client.compat.agent_status(interfaces) != filters.agent_status:
            return None
        address = str(itf.get("ip") if str(itf.get("useip", "1")) == "1" else itf.get("dns") or "").strip()
        if not address:
            log.warning("Zabbix host %s: main agent interface has no address: not selected", name)
            return None
        inventory = rec.get("inventory")
        notes = inventory.get("notes") if isinstance(inventory, Mapping) else None
        creds = parse_notes(notes)
        provider = next((v.strip().lower() for k, v in tags.items() if k.lower() in PROVIDER_TAGS and v.strip()), None)
        host = Host.build(
            name,
            address,
            port=creds.port or DEFAULT_SSH_PORT,
            user=creds.user or self.config.PARAM_SSH_USER,
            password=creds.password if creds.password is not None else self.config.PARAM_SSH_PASSWORD,
            key_file=self.config.PARAM_SSH_KEY_FILE,
            provider=provider,
            tags=tags,
            inventory_id=str(rec["hostid"]),
            agent_port=self._agent_port(itf),
        )
        etype = endpoint_type_of(name, tags, host.endpoint_type if host.endpoint_type in ENDPOINT_TYPES else None)
        if etype is None:
            return None  # not an endpoint (e.g. the <REDE>-PROXY host, a store server without a type)
        return replace(host, endpoint_type=etype, rede=host.rede or self.config.PARAM_REDE)
