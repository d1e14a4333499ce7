"""The trapper items results are sent to, and the templates that carry them.

Endpoint hosts (template `FlageeMonitor endpoint results`), per canonical action A:
  `flageemonitor.status[A]`   text, JSON `{"status", "changed", "changes", "detail", "started_at", "version"}`
                              (status ok / changed / skipped / failed ...; changed: the endpoint changed)
  `flageemonitor.failed[A]`   unsigned, 1 when the status is a failure, else 0
  `flageemonitor.duration[A]` float, seconds
The `<REDE>-PROXY` host (template `FlageeMonitor proxy`):
  `flageemonitor.proxy.heartbeat` text, JSON `{"version", "config_version", "last_run"}`
  `flageemonitor.proxy.last_run`  unsigned, unix time of the last run
  `flageemonitor.run.summary[A]`  text, JSON summary of the last run of A (and a local result)
  `flageemonitor.run.failures[A]` unsigned, failed hosts in the last run of A
"""

from __future__ import annotations

from dataclasses import dataclass

from flageemonitor.core.catalog import load_catalog

ENDPOINT_TEMPLATE = "FlageeMonitor endpoint results"
PROXY_TEMPLATE = "FlageeMonitor proxy"
TEMPLATE_GROUP = "Templates/FlageeMonitor"

# Zabbix item value types
FLOAT, CHAR, LOG, UNSIGNED, TEXT = 0, 1, 2, 3, 4
TRAPPER = 2


@dataclass(frozen=True)
class ItemSpec:
    key: str
    name: str
    value_type: int


def status_key(action: str) -> str:
    return f"flageemonitor.status[{action}]"


def failed_key(action: str) -> str:
    return f"flageemonitor.failed[{action}]"


def duration_key(action: str) -> str:
    return f"flageemonitor.duration[{action}]"


HEARTBEAT_KEY = "flageemonitor.proxy.heartbeat"
LAST_RUN_KEY = "flageemonitor.proxy.last_run"


def summary_key(action: str) -> str:
    return f"flageemonitor.run.summary[{action}]"


def failures_key(action: str) -> str:
    return f"flageemonitor.run.failures[{action}]"


def proxy_host_name(rede: str) -> str:
    return f"{rede}-PROXY"


def actions() -> list[str]:
    return sorted(load_catalog().actions)


def endpoint_items() -> list[ItemSpec]:
    out: list[ItemSpec] = []
    for a in actions():
        out += [
            ItemSpec(status_key(a), f"FlageeMonitor {a}: result", TEXT),
            ItemSpec(failed_key(a), f"FlageeMonitor {a}: failed", UNSIGNED),
            ItemSpec(duration_key(a), f"FlageeMonitor {a}: duration", FLOAT),
        ]
    return out


def proxy_items() -> list[ItemSpec]:
    out = [
        ItemSpec(HEARTBEAT_KEY, "FlageeMonitor proxy: heartbeat", TEXT),
        ItemSpec(LAST_RUN_KEY, "FlageeMonitor proxy: last run", UNSIGNED),
    ]
    for a in actions():
        out += [
            ItemSpec(summary_key(a), f"FlageeMonitor {a}: last run summary", TEXT),
            ItemSpec(failures_key(a), f"FlageeMonitor {a}: failed hosts in last run", UNSIGNED),
        ]
    return out
