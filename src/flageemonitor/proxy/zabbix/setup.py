"""Create, idempotently, what result reporting needs on a Zabbix server: the two templates and
their trapper items, the `<REDE>-PROXY` host, and the endpoint template linked to the
network's endpoint hosts. `dry_run` lists the changes without making them."""

from __future__ import annotations

from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.inventory.zabbix import endpoint_type_of, find_group_id, host_group_name
from flageemonitor.proxy.zabbix.client import ZabbixClient
from flageemonitor.proxy.zabbix.items import (
    ENDPOINT_TEMPLATE,
    PROXY_TEMPLATE,
    TEMPLATE_GROUP,
    TRAPPER,
    ItemSpec,
    endpoint_items,
    proxy_host_name,
    proxy_items,
)

PLANNED_ID = "(planned)"


class ReportingSetup:
    def __init__(self, client: ZabbixClient, config: BotConfig, *, dry_run: bool = False) -> None:
        self.client = client
        self.config = config
        self.dry_run = dry_run
        self.changes: list[str] = []

    def _change(self, text: str) -> bool:
        """Record a change; True when it must really be made."""
        self.changes.append(("would " if self.dry_run else "") + text)
        return not self.dry_run

    def _template_group(self) -> str:
        api = self.client.compat.template_group_api()
        found = self.client.call(f"{api}.get", {"output": ["groupid"], "filter": {"name": [TEMPLATE_GROUP]}})
        if found:
            return str(found[0]["groupid"])
        if not self._change(f"create template group {TEMPLATE_GROUP!r}"):
            return PLANNED_ID
        return str(self.client.call(f"{api}.create", {"name": TEMPLATE_GROUP})["groupids"][0])

    def _template(self, name: str, groupid: str, items: list[ItemSpec]) -> str:
        found = self.client.call("template.get", {"output": ["templateid"], "filter": {"host": [name]}})
        if found:
            templateid = str(found[0]["templateid"])
        elif not self._change(f"create template {name!r}"):
            self.changes.append(f"would create {len(items)} trapper items on {name!r}")
            return PLANNED_ID
        else:
            templateid = str(self.client.call(
                "template.create", {"host": name, "groups": [{"groupid": groupid}]}
            )["templateids"][0])
        have = {str(i["key_"]) for i in self.client.call(
            "item.get", {"output": ["key_"], "templateids": [templateid], "inherited": False}
        )}
        missing = [i for i in items if i.key not in have]
        if missing and self._change(f"create {len(missing)} trapper items on {name!r}"):
            self.client.call("item.create", [
                {"hostid": templateid, "name": i.name, "key_": i.key, "type": TRAPPER,
                 "value_type": i.value_type, "history": "30d"}
                for i in missing
            ])
        return templateid

    def _network_group(self) -> str:
        name = host_group_name(self.config)
        groupid = find_group_id(self.client, name)
        if groupid is not None:
            return groupid
        if not self._change(f"create host group {name!r}"):
            return PLANNED_ID
        return str(self.client.call("hostgroup.create", {"name": name})["groupids"][0])

    def _proxy_host(self, groupid: str, templateid: str) -> None:
        name = proxy_host_name(self.config.PARAM_REDE)
        found = self.client.call("host.get", {
            "output": ["hostid"], "filter": {"host": [name]}, "selectParentTemplates": ["templateid"],
        })
        if not found:
            if self._change(f"create host {name!r} linked to {PROXY_TEMPLATE!r}"):
                self.client.call("host.create", {
                    "host": name, "groups": [{"groupid": groupid}], "templates": [{"templateid": templateid}],
                })
            return
        linked = {str(t["templateid"]) for t in found[0].get("parentTemplates", [])}
        if templateid not in linked and self._change(f"link {PROXY_TEMPLATE!r} to {name!r}"):
            self.client.call("host.massadd", {
                "hosts": [{"hostid": found[0]["hostid"]}], "templates": [{"templateid": templateid}],
            })

    def _link_endpoints(self, groupid: str, templateid: str) -> None:
        if groupid == PLANNED_ID:
            return
        hosts = self.client.call("host.get", {
            "output": ["hostid", "host"], "groupids": [groupid],
            "selectParentTemplates": ["templateid"], "selectTags": ["tag", "value"],
        })
        todo: list[dict[str, Any]] = []
        for h in hosts:
            tags = {str(t["tag"]): str(t.get("value", "")) for t in h.get("tags", [])}
            if endpoint_type_of(str(h["host"]), tags, None) is None:
                continue
            if templateid not in {str(t["templateid"]) for t in h.get("parentTemplates", [])}:
                todo.append({"hostid": h["hostid"]})
        if todo and self._change(f"link {ENDPOINT_TEMPLATE!r} to {len(todo)} endpoint hosts"):
            self.client.call("host.massadd", {"hosts": todo, "templates": [{"templateid": templateid}]})

    def run(self) -> list[str]:
        tgroup = self._template_group()
        endpoint_tpl = self._template(ENDPOINT_TEMPLATE, tgroup, endpoint_items())
        proxy_tpl = self._template(PROXY_TEMPLATE, tgroup, proxy_items())
        hgroup = self._network_group()
        self._proxy_host(hgroup, proxy_tpl)
        self._link_endpoints(hgroup, endpoint_tpl)
        return self.changes
