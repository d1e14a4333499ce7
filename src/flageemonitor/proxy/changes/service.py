"""Service control on old and new endpoints: systemd, sysv init scripts, Slackware rc.d, or a
pair of start/stop scripts (what a bundle ships).

`init_probe(name)` is a probe command that tells which of them the endpoint has for `name`;
`Service.detect` reads its output. The commands are shell text with every value quoted.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

_q = shlex.quote
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class InitKind(StrEnum):
    SYSTEMD = "systemd"
    SYSV = "sysv"
    SLACKWARE = "slackware"
    SCRIPTS = "scripts"


def _check_name(name: str) -> str:
    if not _SERVICE_NAME.match(name):
        raise ValueError(f"not a service name: {name!r}")
    return name


def init_probe(name: str) -> str:
    """Read-only shell printing one line per way `name` can be controlled (systemd when it runs
    as the init system and knows the unit, sysv, slackware), most preferred first."""
    n = _check_name(name)
    return (
        f"if [ -d /run/systemd/system ] && systemctl cat {n}.service >/dev/null 2>&1; then echo systemd; fi; "
        f"if [ -x /etc/init.d/{n} ]; then echo sysv; fi; "
        f"if [ -x /etc/rc.d/rc.{n} ]; then echo slackware; fi; true"
    )


@dataclass(frozen=True)
class Service:
    """How to start/stop/restart one service on one endpoint."""

    name: str
    kind: InitKind
    start_script: str = ""
    stop_script: str = ""

    @classmethod
    def scripts(cls, name: str, start: str, stop: str) -> Service:
        """A service driven by a start script (which restarts when running) and a stop script."""
        return cls(_check_name(name), InitKind.SCRIPTS, start, stop)

    @classmethod
    def unit_over_scripts(cls, name: str, stop: str) -> Service:
        """A systemd unit whose ExecStart/ExecStop are a bundle's scripts: started and restarted
        through systemctl, so systemd supervises what runs; stopped through systemctl and then
        the stop script, so an instance started beside systemd (an older install, a cron check)
        stops too."""
        return cls(_check_name(name), InitKind.SYSTEMD, stop_script=stop)

    @classmethod
    def detect(cls, name: str, probe_output: str) -> Service | None:
        """The preferred init kind from `init_probe(name)`'s output, None when there is none."""
        kinds = [line.strip() for line in probe_output.splitlines() if line.strip() in InitKind.__members__.values()]
        return cls(_check_name(name), InitKind(kinds[0])) if kinds else None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind.value})"

    def journal_command(self) -> str | None:
        """The unit's last log lines, for a failed start (systemd only)."""
        if self.kind is not InitKind.SYSTEMD:
            return None
        return f"journalctl -u {_q(self.name + '.service')} -n 8 --no-pager -o cat 2>/dev/null; true"

    def command(self, verb: str) -> str:
        if verb not in {"start", "stop", "restart"}:
            raise ValueError(f"unknown service verb {verb!r}")
        n = self.name
        if self.kind is InitKind.SYSTEMD:
            unit = f"systemctl {verb} {_q(n + '.service')}"
            return f"{unit}; sh {_q(self.stop_script)}" if verb == "stop" and self.stop_script else unit
        if self.kind is InitKind.SYSV:
            return f"{_q('/etc/init.d/' + n)} {verb}"
        if self.kind is InitKind.SLACKWARE:
            return f"{_q('/etc/rc.d/rc.' + n)} {verb}"
        # a bundle's start script stops a running instance first, so it also restarts
        return f"sh {_q(self.stop_script if verb == 'stop' else self.start_script)}"
