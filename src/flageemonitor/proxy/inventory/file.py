"""The YAML file inventory (the embedded default).

    hosts:
      - name: REDE1-LOJA001-PDV201   # required
        ip: 127.0.0.2                # required
        port: 22                     # default 22
        user: root                   # default: config PARAM_SSH_USER
        password: secret             # or key_file: /path/to/key
        provider: arius              # optional
        tags: {tipo: PDV}            # optional
        agent_port: 10050            # the agent's port; default: config PARAM_ZABBIX_PORT
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import InventoryError
from flageemonitor.core.hosts import Host, HostFilter

# libyaml's safe loader when available: ~10x faster on large fleets, same semantics
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KNOWN = {"name", "ip", "port", "user", "password", "key_file", "provider", "tags", "agent_port"}


class FileInventory:
    name = "file"

    def __init__(self, path: Path, config: BotConfig) -> None:
        self.path = path
        self.config = config

    def load(self) -> list[Host]:
        try:
            doc = yaml.load(self.path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - a safe loader
        except FileNotFoundError:
            raise InventoryError(f"inventory file {self.path} does not exist") from None
        except yaml.YAMLError as exc:
            raise InventoryError(f"inventory file {self.path} is not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), list):
            raise InventoryError(f"inventory file {self.path}: expected a mapping with a 'hosts' list, e.g. "
                                 "'hosts: [{name: REDE1-LOJA001-PDV201, ip: 10.0.0.21}]' "
                                 f"(accepted keys per host: {', '.join(sorted(_KNOWN))})")
        hosts: list[Host] = []
        seen: set[str] = set()
        for index, item in enumerate(doc["hosts"]):
            host = self._host(index, item)
            if host.name.upper() in seen:
                raise InventoryError(f"inventory file {self.path}: host {host.name!r} is listed twice")
            seen.add(host.name.upper())
            hosts.append(host)
        return hosts

    def _host(self, index: int, item: Any) -> Host:
        where = f"inventory file {self.path}: hosts[{index}]"
        if not isinstance(item, dict):
            raise InventoryError(f"{where}: expected a mapping")
        unknown = set(item) - _KNOWN
        if unknown:
            raise InventoryError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}; "
                                 f"accepted keys: {', '.join(sorted(_KNOWN))}")
        name, ip = item.get("name"), item.get("ip")
        if not isinstance(name, str) or not name.strip():
            raise InventoryError(f"{where}: 'name' is required")
        if not isinstance(ip, str) or not ip.strip():
            raise InventoryError(f"{where} ({name}): 'ip' is required")
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            if not ip.replace("-", "").replace(".", "").isalnum():
                raise InventoryError(f"{where} ({name}): 'ip' {ip!r} is not an address or host name") from None
        port = item.get("port", 22)
        agent_port = item.get("agent_port", self.config.PARAM_ZABBIX_PORT)
        for key, value in (("port", port), ("agent_port", agent_port)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
                raise InventoryError(f"{where} ({name}): {key!r} must be 1..65535")
        tags = item.get("tags") or {}
        if not isinstance(tags, dict):
            raise InventoryError(f"{where} ({name}): 'tags' must be a mapping")
        host = Host.build(
            name.strip(),
            ip.strip(),
            port=port,
            user=str(item.get("user") or self.config.PARAM_SSH_USER),
            password=item.get("password") if item.get("password") is not None else self.config.PARAM_SSH_PASSWORD,
            key_file=item.get("key_file") or self.config.PARAM_SSH_KEY_FILE,
            provider=item.get("provider"),
            tags={str(k): str(v) for k, v in tags.items()},
            agent_port=agent_port,
        )
        if host.rede is None:
            host = replace(host, rede=self.config.PARAM_REDE)
        return host

    def select(self, filters: HostFilter) -> list[Host]:
        scoped = filters if filters.rede else replace(filters, rede=self.config.PARAM_REDE)
        return scoped.apply(self.load())
