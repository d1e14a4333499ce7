"""Zabbix inventory source (placeholder until the Zabbix source lands)."""

from __future__ import annotations

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import InventoryError
from flageemonitor.core.hosts import Host, HostFilter


class ZabbixInventory:
    name = "zabbix"

    def __init__(self, config: BotConfig) -> None:
        self.config = config

    def select(self, filters: HostFilter) -> list[Host]:
        raise InventoryError("the Zabbix inventory source is not available in this version")
