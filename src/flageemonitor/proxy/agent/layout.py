"""Where the agent bundle lives on an endpoint (deploy/agent-bundle/LAYOUT.md, contract v1).

Fixed paths under /ariusmonitor (the installed base's path), the repository's file names, which
assets each architecture gets, and exactly what `utilities/setup.sh` may create outside the
bundle directory (what uninstall removes, and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass

from flageemonitor.core.agent_conf import CONF, INCLUDE_DIR, LOGFILE, PIDFILE, ROOT

__all__ = ["CONF", "INCLUDE_DIR", "LOGFILE", "PIDFILE", "ROOT"]

ARCHIVES = {"x86_64": "ariusmonitor.tar.gz", "i686": "ariusmonitor-i686.tar.gz"}
VERSION_FILE = f"{ROOT}/VERSION"
MARKER = f"{ROOT}/.flagee-bundle"  # the sha256 of the archive last installed, written after a verified install
AGENTD = f"{ROOT}/zabbix/sbin/zabbix_agentd"
SENDER = f"{ROOT}/zabbix/bin/zabbix_sender"
SETUP = f"{ROOT}/utilities/setup.sh"
START = f"{ROOT}/utilities/start.sh"
STOP = f"{ROOT}/utilities/stop.sh"
SERVICE_NAME = "ariusmonitor"
UNIT = f"/etc/systemd/system/{SERVICE_NAME}.service"  # what setup.sh installs where systemd runs
RC_LOCAL = "/etc/rc.d/rc.local"
RC_BEGIN, RC_END = "# BEGIN ARIUSMONITOR", "# END ARIUSMONITOR"
USER = GROUP = "ariusmonitor"


@dataclass(frozen=True)
class Asset:
    name: str  # in the repository
    path: str  # on the endpoint
    mode: int
    arches: frozenset[str]  # which endpoints get it
    restarts: bool = False  # the agent reads it: a change restarts the agent


_ALL = frozenset({"x86_64", "i686"})
_64 = frozenset({"x86_64"})
ASSETS: tuple[Asset, ...] = (
    Asset("geral.conf", f"{INCLUDE_DIR}/geral.conf", 0o644, _ALL, restarts=True),
    Asset("MonitoraSATc", f"{ROOT}/MonitoraSATc", 0o755, _ALL),
    Asset("MonitoraSATc64", f"{ROOT}/MonitoraSATc64", 0o755, _64),
    Asset("MonitoraSAT.sh", f"{ROOT}/MonitoraSAT.sh", 0o755, _ALL),
    Asset("MonitoraImpressora", f"{ROOT}/MonitoraImpressora", 0o755, _ALL),
    Asset("MonitoraImpressora64", f"{ROOT}/MonitoraImpressora64", 0o755, _64),
    Asset("libs.tar.gz", f"{ROOT}/libs.tar.gz", 0o644, _ALL),
)
LIBS = "libs.tar.gz"  # extracted into ROOT when it changes

# What setup.sh may create outside ROOT (LAYOUT.md); uninstall removes those present, plus the
# rc.local block, the user and the group. update-rc.d's links are removed by `update-rc.d -f`.
SETUP_FILES: tuple[str, ...] = (
    UNIT,
    "/etc/init.d/ariusmonitor",
    "/etc/rc.d/rc.ariusmonitor",
    "/etc/sudoers.d/ariusmonitor",
    "/etc/cron.d/ariusmonitor-check-service",
)


def assets_for(arch: str) -> tuple[Asset, ...]:
    return tuple(a for a in ASSETS if arch in a.arches)


def asset_names() -> list[str]:
    return [a.name for a in ASSETS]
