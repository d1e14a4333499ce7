"""Inventory sources: where the endpoints of a network come from."""

from __future__ import annotations

from pathlib import Path

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.inventory.base import InventorySource


def open_inventory(config: BotConfig, inventory_file: Path | None = None) -> InventorySource:
    """The file inventory when a file is given (CLI or config), else the configured source."""
    path = inventory_file or (Path(config.PARAM_INVENTORY_FILE) if config.PARAM_INVENTORY_FILE else None)
    kind = "file" if inventory_file is not None else config.inventory_kind
    if kind == "zabbix":
        from flageemonitor.proxy.inventory.zabbix import ZabbixInventory

        return ZabbixInventory(config)
    from flageemonitor.proxy.inventory.file import FileInventory

    if path is None:
        from flageemonitor.core.errors import InventoryError

        raise InventoryError(
            "no inventory: give --inventory FILE, set PARAM_INVENTORY_FILE, "
            "or configure Zabbix (PARAM_ZABBIX_SERVER / PARAM_ZABBIX_URL)"
        )
    return FileInventory(path, config)


__all__ = ["InventorySource", "open_inventory"]
