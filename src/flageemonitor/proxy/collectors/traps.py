"""Collector values for Zabbix trapper items, through zabbix-utils' Sender (no `zabbix_sender`
binary, no agent config file).

Target: `PARAM_ZABBIX_SENDER_SERVER`/`PARAM_ZABBIX_SENDER_PORT`, else the Zabbix frontend's host
(see `zabbix.reporter.sender_target`). Status traps are JSON built with `json.dumps`
(`{"status": "sucesso"|"erro", "message": ...}`), so quotes in a message cannot break them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from zabbix_utils import Sender
from zabbix_utils.types import ItemValue

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.zabbix.items import proxy_host_name
from flageemonitor.proxy.zabbix.reporter import SEND_TIMEOUT_S, sender_target

log = logging.getLogger("flageemonitor.collectors.traps")

COUPONS_CONNECTION = "concentrador.mysql.conexao"
COUPON_BATCH = "concentrador.cupons.lote"
CHECKOUT_OPERATOR = "pdv.neo.operador_id"


@dataclass(frozen=True)
class SendResult:
    total: int
    processed: int
    failed: int
    error: str = ""


def send(config: BotConfig, values: list[ItemValue]) -> SendResult:
    """Send `values`; never raises (errors are in the result and logged)."""
    if not values:
        return SendResult(0, 0, 0)
    target = sender_target(config)
    if target is None:
        return SendResult(len(values), 0, len(values), "no Zabbix sender target: set PARAM_ZABBIX_SENDER_SERVER")
    try:
        resp = Sender(server=target[0], port=target[1], timeout=SEND_TIMEOUT_S).send(values)
    except Exception as exc:  # the trap is a side channel: report, never crash the collector
        error = f"Zabbix trapper {target[0]}:{target[1]}: {type(exc).__name__}: {exc}"
        log.warning("%s", error)
        return SendResult(len(values), 0, len(values), error)
    failed = int(resp.failed)
    error = ""
    if failed:
        error = (f"Zabbix trapper {target[0]}:{target[1]} refused {failed} of {resp.total} values "
                 "(unknown host or item, or the host is monitored by a proxy)")
        log.warning("%s", error)
    return SendResult(int(resp.total), int(resp.processed), failed, error)


def status_value(config: BotConfig, key: str, ok: bool, message: str) -> ItemValue:
    body = json.dumps({"status": "sucesso" if ok else "erro", "message": message}, ensure_ascii=False)
    return ItemValue(proxy_host_name(config.PARAM_REDE), key, body, int(time.time()))
