"""Zabbix: the API client built from the config, version differences, and result reporting."""

from flageemonitor.proxy.zabbix.client import ZabbixClient, ZabbixError, api_url, connect
from flageemonitor.proxy.zabbix.compat import ApiVersion, Compat

__all__ = ["ApiVersion", "Compat", "ZabbixClient", "ZabbixError", "api_url", "connect"]
