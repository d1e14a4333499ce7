"""Send run results to Zabbix trapper items with the sender protocol (zabbix-utils `Sender`).

Enabled by `PARAM_ZABBIX_REPORTING: true`. The target is `PARAM_ZABBIX_SENDER_SERVER` /
`PARAM_ZABBIX_SENDER_PORT` (default: the Zabbix frontend's host, port 10051). On Zabbix 7 a value
for a host monitored by a proxy must go to that proxy: point the sender there. Values are JSON
documents or numbers built with `json.dumps`/`float`/`int`, never by string formatting. A
failure to send is logged and never fails the run. Items: see `zabbix.items`; create them with
`flageemonitor zabbix setup-reporting`. Dry runs send only the heartbeat.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from zabbix_utils import Sender
from zabbix_utils.types import ItemValue

from flageemonitor import __version__
from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import FlageeError
from flageemonitor.core.results import RunReport
from flageemonitor.proxy.zabbix import items as keys
from flageemonitor.proxy.zabbix.client import api_url

log = logging.getLogger("flageemonitor.reporting.zabbix")

SEND_TIMEOUT_S = 10


def sender_target(config: BotConfig) -> tuple[str, int] | None:
    """Where trapper values go, or None when nothing is configured."""
    if config.PARAM_ZABBIX_SENDER_SERVER:
        return config.PARAM_ZABBIX_SENDER_SERVER.strip(), int(config.PARAM_ZABBIX_SENDER_PORT)
    try:
        host = urlsplit(api_url(config)).hostname
    except FlageeError:
        return None
    return (host, int(config.PARAM_ZABBIX_SENDER_PORT)) if host else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def build_values(report: RunReport, config: BotConfig, *, now: int | None = None) -> list[ItemValue]:
    """The trapper values for one run report."""
    clock = int(time.time()) if now is None else now
    action = report.canonical
    values: list[ItemValue] = []
    if not report.dry_run:
        for r in report.hosts:
            values += [
                ItemValue(r.host, keys.status_key(action), _json({
                    "status": r.status.value, "changed": r.changed, "changes": len(r.changes),
                    "detail": r.detail, "started_at": report.started_at, "version": report.action_version,
                }), clock),
                ItemValue(r.host, keys.failed_key(action), str(int(r.status.is_failure)), clock),
                ItemValue(r.host, keys.duration_key(action), str(round(float(r.duration_s), 3)), clock),
            ]
    proxy = keys.proxy_host_name(config.PARAM_REDE)
    summary = report.summary()
    last_run = {"action": action, "requested": report.requested, "started_at": report.started_at,
                "dry_run": report.dry_run, "summary": summary, "failed": report.failed}
    if report.local is not None:
        last_run["local"] = report.local
    values += [
        ItemValue(proxy, keys.HEARTBEAT_KEY, _json({
            "version": __version__, "config_version": config.CONFIG_VERSION, "last_run": last_run,
        }), clock),
        ItemValue(proxy, keys.LAST_RUN_KEY, str(clock), clock),
    ]
    if not report.dry_run:
        values += [
            ItemValue(proxy, keys.summary_key(action), _json(last_run), clock),
            ItemValue(proxy, keys.failures_key(action), str(int(summary["failures"])), clock),
        ]
    return values


class ZabbixReporter:
    name = "zabbix"

    def publish(self, report: RunReport, config: BotConfig) -> None:
        target = sender_target(config)
        if target is None:
            log.warning("Zabbix reporting is on but no sender target: set PARAM_ZABBIX_SENDER_SERVER")
            return
        values = build_values(report, config)
        try:
            resp = Sender(server=target[0], port=target[1], timeout=SEND_TIMEOUT_S).send(values)
        except Exception as exc:  # the sender must never fail the run
            log.warning("sending %d values to Zabbix %s:%d failed: %s", len(values), target[0], target[1], exc)
            return
        if resp.failed:
            log.warning(
                "Zabbix %s:%d refused %d of %d values (missing items or hosts? run "
                "'flageemonitor zabbix setup-reporting'; on Zabbix 7 send to the proxy that monitors them)",
                target[0], target[1], resp.failed, resp.total,
            )
        else:
            log.info("sent %d values to Zabbix %s:%d", resp.processed, target[0], target[1])
