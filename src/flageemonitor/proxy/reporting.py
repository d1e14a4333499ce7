"""Where run results go after a run (besides stdout): reporters chosen from the config.

`publish` is called by the CLI and the daemon after every run. A reporter never fails the run:
its errors are logged and swallowed here.
"""

from __future__ import annotations

import logging
from typing import Protocol

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.results import RunReport

log = logging.getLogger("flageemonitor.reporting")


class Reporter(Protocol):
    name: str

    def publish(self, report: RunReport, config: BotConfig) -> None: ...


def reporters_for(config: BotConfig) -> list[Reporter]:
    """Reporters enabled by the config (none by default)."""
    reporters: list[Reporter] = []
    if config.PARAM_ZABBIX_REPORTING:
        from flageemonitor.proxy.zabbix.reporter import ZabbixReporter

        reporters.append(ZabbixReporter())
    return reporters


def publish(report: RunReport, config: BotConfig) -> None:
    for reporter in reporters_for(config):
        try:
            reporter.publish(report, config)
        except Exception as exc:  # a reporter must never fail the action
            log.warning("reporter %s failed: %s", reporter.name, exc)
