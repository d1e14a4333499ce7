"""`update_endpoint_timezone` (`pdv_update_timezone`): the endpoint's time zone and, optionally,
its NTP server (settings and their validation: `core.timesettings`; they are resolved and
checked once per run, before any host: a bad value refuses the run and nothing is sent).

Probe (one round trip): the release files, `/etc/localtime` (what it resolves to, its
checksum), `/etc/timezone`, Slackware's `/etc/localtime-copied-from`, the zone file (it must
exist on the endpoint and start with `TZif`), `timedatectl status`, `date +%Z %z`; with NTP,
whether systemd runs systemd-timesyncd, its config, `ntpdate` (and `ntpdate -q` against the
server: the clock's offset) and `apt-get`.

How the endpoint keeps time decides how the zone is set, only where it differs:
- `timedatectl` where it works: `timedatectl set-timezone`;
- else the files: `/etc/localtime` a link to the zone file (Slackware: a checked copy of it,
  and `/etc/localtime-copied-from` a link, as its timeconfig does), `/etc/timezone` holding the
  name (not on Slackware).
An `/etc/localtime` that already resolves to, or is a copy of, the zone file is left alone.

NTP (when enabled): systemd-timesyncd where systemd runs it (`NTP=<server>` and an empty
`FallbackNTP=` in its config, the original's drop-in with `force_timesyncd`, a restart, then
`timedatectl set-ntp true` and `set-local-rtc 0` where needed); else `ntpdate -u <server>` when
the clock is off by more than `NTP_TOLERANCE_S`; ntpdate is installed with apt-get only on a
Debian-like endpoint. An endpoint with no way to use the server fails before any change.

Verify: `/etc/localtime` resolves to (or is a copy of) the zone file, `/etc/timezone` says the
name, and the endpoint's `date +%z` equals `TZ=:<zone file> date +%z` there; otherwise every
change is undone and the host reports `failed`, "rolled back".
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from flageemonitor.core.errors import ActionFailed, ActionRefused
from flageemonitor.core.facts import PROBE_COMMAND, EndpointFacts, parse_probe
from flageemonitor.core.hosts import Host
from flageemonitor.core.timesettings import (
    NTP_TOLERANCE_S,
    TIMESYNCD_FORCE_DROPIN,
    ZONEINFO,
    SettingInvalid,
    TimedatectlStatus,
    TimeSettings,
    parse_ntpdate_offset,
    parse_timedatectl,
    render_timesyncd_conf,
    resolve_time_settings,
)
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, RemoteSession
from flageemonitor.proxy.changes import (
    ApplyContext,
    Change,
    ChangeAction,
    FileState,
    InitKind,
    Plan,
    Probe,
    ProbeResult,
    PutFile,
    RunCommand,
    Service,
    ServiceChange,
    init_probe,
)
from flageemonitor.proxy.changes.paths import CopyFile, MakeDir, PutLink

_q = shlex.quote
LOCALTIME = "/etc/localtime"
TIMEZONE_FILE = "/etc/timezone"
COPIED_FROM = "/etc/localtime-copied-from"  # Slackware's record of the zone /etc/localtime copies
TIMESYNCD = "systemd-timesyncd"
TIMESYNCD_CONF = "/etc/systemd/timesyncd.conf"
DROPIN_DIR = "/etc/systemd/system/systemd-timesyncd.service.d"
DROPIN = f"{DROPIN_DIR}/override.conf"
DEBIAN_LIKE = {"ubuntu", "mint", "debian"}
NTPDATE_FIND = ("command -v ntpdate 2>/dev/null || for p in /usr/sbin/ntpdate /usr/bin/ntpdate /sbin/ntpdate; "
                'do [ -x "$p" ] && echo "$p" && break; done; true')
APT_INSTALL = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "--no-install-recommends",
               "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "ntpdate"]


def _bounded(command: str, seconds: int = 15) -> str:
    """`command` under `timeout` where the endpoint has it (a timedatectl waiting on D-Bus)."""
    return f"if command -v timeout >/dev/null 2>&1; then timeout {seconds} {command}; else {command}; fi"


def _first_line(probe: ProbeResult, name: str) -> str:
    out = probe.outputs.get(name)
    lines = out.stdout.splitlines() if out is not None and out.ok else []
    return lines[0].strip() if lines else ""


@dataclass(frozen=True)
class NtpState:
    timesyncd: bool  # systemd runs and knows systemd-timesyncd
    timesyncd_active: bool
    conf: FileState
    dropin: FileState
    dropin_dir: FileState
    ntpdate: str | None
    apt: bool
    offset: float | None  # from `ntpdate -q`; None: not asked, or no answer
    query: str


@dataclass(frozen=True)
class TimeState:
    facts: EndpointFacts
    localtime: FileState
    localtime_real: str  # readlink -f /etc/localtime
    copied_from: FileState
    copied_from_real: str
    timezone_file: FileState
    target: FileState
    target_real: str
    magic: str  # the zone file's first bytes: TZif
    timedatectl: TimedatectlStatus
    date: str
    ntp: NtpState | None

    @property
    def slackware(self) -> bool:
        return self.facts.distro == "slackware"

    @property
    def method(self) -> str:
        if self.timedatectl.works:
            return "timedatectl"
        return "slackware files" if self.slackware else "files"

    def current_zone(self) -> str:
        """The zone the endpoint says it is in (timedatectl, /etc/timezone, the link's path)."""
        if self.timedatectl.timezone:
            return self.timedatectl.timezone
        if not self.slackware and self.timezone_file.content:
            return self.timezone_file.content.strip()
        for path in (self.copied_from_real, self.localtime_real):
            if path.startswith(ZONEINFO + "/"):
                return path[len(ZONEINFO) + 1:]
        return "unknown"

    def localtime_ok(self) -> bool:
        return bool(self.target_real) and (
            self.localtime_real == self.target_real
            or (self.localtime.kind == "file" and self.localtime.sha256 == self.target.sha256))


def time_probe(settings: TimeSettings) -> Probe:
    target = _q(settings.localtime_target)
    probe = Probe().file(LOCALTIME).file(COPIED_FROM).file(TIMEZONE_FILE, content=True).file(settings.localtime_target)
    probe.command("facts", PROBE_COMMAND)
    probe.command("localtime_real", f"readlink -f {LOCALTIME}")
    probe.command("copied_real", f"readlink -f {COPIED_FROM}")
    probe.command("target_real", f"readlink -f {target}")
    probe.command("magic", f"head -c 4 {target}")
    probe.command("timedatectl", _bounded("timedatectl status"))
    probe.command("date", "date '+%Z %z'")
    if settings.enable_ntp:
        probe.command("timesyncd", init_probe(TIMESYNCD))
        probe.command("timesyncd_active", f"systemctl is-active {TIMESYNCD}.service")
        probe.file(TIMESYNCD_CONF, content=True).file(DROPIN, content=True).file(DROPIN_DIR)
        probe.command("ntpdate", NTPDATE_FIND)
        probe.command("apt", "command -v apt-get")
        if settings.ntp_server:
            server = _q(settings.ntp_server)
            probe.command("ntp_query", f"n=$({NTPDATE_FIND}); [ -n \"$n\" ] || exit 127; "
                                       + _bounded(f"\"$n\" -q -p 1 -t 2 {server}"))
    return probe


def time_state(result: ProbeResult, settings: TimeSettings) -> TimeState:
    ntp = None
    if settings.enable_ntp:
        service = Service.detect(TIMESYNCD, result.outputs["timesyncd"].stdout)
        query = result.outputs.get("ntp_query")
        ntp = NtpState(
            timesyncd=service is not None and service.kind is InitKind.SYSTEMD,
            timesyncd_active=_first_line(result, "timesyncd_active") == "active",
            conf=result.file(TIMESYNCD_CONF), dropin=result.file(DROPIN), dropin_dir=result.file(DROPIN_DIR),
            ntpdate=_first_line(result, "ntpdate") or None, apt=bool(_first_line(result, "apt")),
            offset=parse_ntpdate_offset(query.stdout) if query is not None else None,
            query=query.stdout.strip()[-200:] if query is not None else "")
    td = result.outputs["timedatectl"]
    return TimeState(
        facts=parse_probe(result.outputs["facts"].stdout),
        localtime=result.file(LOCALTIME), localtime_real=_first_line(result, "localtime_real"),
        copied_from=result.file(COPIED_FROM), copied_from_real=_first_line(result, "copied_real"),
        timezone_file=result.file(TIMEZONE_FILE),
        target=result.file(settings.localtime_target), target_real=_first_line(result, "target_real"),
        magic=result.outputs["magic"].stdout[:4], timedatectl=parse_timedatectl(td.exit_status, td.stdout),
        date=_first_line(result, "date"), ntp=ntp)


@dataclass
class ReloadSystemd(Change):
    """`systemctl daemon-reload` after a unit drop-in changed; again on rollback, once the
    drop-in is restored (before any service restarts on it)."""

    kind: str = "run_command"

    def summary(self) -> str:
        return "systemctl daemon-reload"

    async def apply(self, ctx: ApplyContext) -> None:
        await ctx.sh("systemctl daemon-reload")

    def late_undo(self) -> str:
        return "systemctl daemon-reload"


def _timedatectl(*args: str, undo: list[str] | None = None, description: str) -> RunCommand:
    return RunCommand(["timedatectl", *args], description,
                      undo=(lambda _r: " ".join(_q(a) for a in ["timedatectl", *undo])) if undo else None)


def zone_changes(settings: TimeSettings, state: TimeState) -> list[Change]:
    tz, target = settings.timezone, settings.localtime_target
    changes: list[Change] = []
    if state.timedatectl.works:
        if state.timedatectl.timezone != tz or not state.localtime_ok():
            old = state.timedatectl.timezone
            changes.append(_timedatectl("set-timezone", tz, undo=["set-timezone", old] if old else None,
                                        description=f"timedatectl set-timezone {tz} (was {old})"))
    elif not state.localtime_ok():
        if state.slackware:
            assert state.target.sha256 is not None
            changes.append(CopyFile(LOCALTIME, state.localtime, source=target, sha256=state.target.sha256))
        else:
            changes.append(PutLink(LOCALTIME, state.localtime, target=target))
    if state.slackware:
        if state.copied_from_real != state.target_real:
            changes.append(PutLink(COPIED_FROM, state.copied_from, target=target))
    elif (state.timezone_file.content or "").strip() != tz:
        changes.append(PutFile(TIMEZONE_FILE, f"{tz}\n".encode(), state.timezone_file, mode=0o644, text=True,
                               owner="0:0"))
    return changes


def ntp_changes(settings: TimeSettings, state: TimeState) -> tuple[list[Change], list[str]]:
    """The NTP changes and notes for the report; raises ActionFailed when the endpoint has no
    way to use the server (before any change)."""
    ntp, td, server = state.ntp, state.timedatectl, settings.ntp_server
    if ntp is None:
        return [], []
    changes: list[Change] = []
    notes: list[str] = []
    if server and ntp.timesyncd:
        files: list[Change] = []
        wanted = render_timesyncd_conf(ntp.conf.content, server)
        if ntp.conf.exists and ntp.conf.content is None:
            raise ActionFailed(f"{TIMESYNCD_CONF} cannot be read back as text; nothing changed")
        if wanted != ntp.conf.content:
            files.append(PutFile(TIMESYNCD_CONF, wanted.encode(), ntp.conf, mode=0o644, text=True, owner="0:0"))
        if settings.force_timesyncd and ntp.dropin.content != TIMESYNCD_FORCE_DROPIN:
            if not ntp.dropin_dir.exists:
                files.append(MakeDir(DROPIN_DIR))
            files.append(PutFile(DROPIN, TIMESYNCD_FORCE_DROPIN.encode(), ntp.dropin, mode=0o644, text=True,
                                 owner="0:0"))
            files.append(ReloadSystemd())
        changes += files
        if files or not ntp.timesyncd_active:
            service = Service(TIMESYNCD, InitKind.SYSTEMD)
            changes.append(ServiceChange(service, "restart", ntp.timesyncd_active, reason=f"NTP={server}"))
        notes.append(f"NTP {server} via systemd-timesyncd")
    elif server:
        if ntp.ntpdate:
            if ntp.offset is None:
                notes.append(f"NTP: {server} did not answer ntpdate -q; clock not synchronised ({ntp.query or '-'})")
            elif abs(ntp.offset) > NTP_TOLERANCE_S:
                changes.append(RunCommand([ntp.ntpdate, "-u", server],
                                          f"set the clock from {server} (off by {ntp.offset:+.3f} s)"))
            else:
                notes.append(f"NTP: clock within {NTP_TOLERANCE_S:g} s of {server} ({ntp.offset:+.3f} s)")
        elif ntp.apt and state.facts.distro in DEBIAN_LIKE:
            changes.append(RunCommand(APT_INSTALL, "install ntpdate (apt-get)"))
            changes.append(RunCommand(["ntpdate", "-u", server], f"set the clock from {server}"))
        else:
            raise ActionFailed(
                f"NTP server {server} requested, but the endpoint runs no systemd-timesyncd and has no ntpdate"
                + ("" if state.facts.distro in DEBIAN_LIKE else f" ({state.facts.distro}: not installed with apt)")
                + "; install ntpdate or disable NTP; nothing changed")
    if td.works:
        if td.ntp_enabled is False:
            changes.append(_timedatectl("set-ntp", "true", undo=["set-ntp", "false"], description="enable NTP sync"))
        if td.rtc_local:
            changes.append(_timedatectl("set-local-rtc", "0", undo=["set-local-rtc", "1"],
                                        description="keep the hardware clock in UTC"))
    elif not server:
        notes.append("NTP enabled without a server and without a working timedatectl: nothing to configure")
    return changes, notes


@register
class UpdateEndpointTimezone(ChangeAction[TimeSettings, TimeState]):
    name = "update_endpoint_timezone"
    version = "2.0.0"

    @staticmethod
    def settings(ctx: ActionContext) -> TimeSettings:
        try:
            return resolve_time_settings(ctx.config, ctx.args)
        except SettingInvalid as exc:
            raise ActionRefused(f"update_endpoint_timezone: {exc}; nothing was sent to any endpoint") from None

    async def prepare(self, ctx: ActionContext, hosts: list[Host]) -> None:
        s = self.settings(ctx)
        ntp = (f"NTP {s.ntp_server or 'on (no server)'}" + (" (force timesyncd)" if s.force_timesyncd else "")
               if s.enable_ntp else "NTP off")
        ctx.prepared["settings"] = {**s.to_dict(), "summary": f"time zone {s.timezone} ({s.localtime_target}), {ntp}"}

    def desired(self, host: Host, ctx: ActionContext) -> TimeSettings:
        return self.settings(ctx)

    async def probe(self, session: RemoteSession, host: Host, ctx: ActionContext,
                    desired: TimeSettings) -> TimeState:
        result = await time_probe(desired).run(session, sudo=not session.is_root, timeout=ctx.command_timeout)
        return time_state(result, desired)

    def changes(self, desired: TimeSettings, state: TimeState, ctx: ActionContext) -> Plan:
        if state.target.kind not in {"file", "link"} or state.target.sha256 is None:
            raise ActionFailed(f"time zone {desired.timezone}: {desired.localtime_target} is not on the endpoint "
                               "(its zoneinfo lacks that zone); nothing changed")
        if state.magic != "TZif":
            raise ActionFailed(f"{desired.localtime_target} is not a zoneinfo file; nothing changed")
        changes = zone_changes(desired, state)
        ntp, ntp_notes = ntp_changes(desired, state)
        current = state.current_zone()
        moving = current != desired.timezone or bool(changes)
        zone = f"time zone {current} -> {desired.timezone}" if moving else f"time zone {desired.timezone}"
        data: dict[str, Any] = {
            "method": state.method,
            "current": {"timezone": current, "localtime": state.localtime_real, "date": state.date,
                        "timedatectl": state.timedatectl.works},
            "target": {"timezone": desired.timezone, "localtime": desired.localtime_target,
                       "ntp_server": desired.ntp_server if desired.enable_ntp else None},
        }
        if state.ntp is not None:
            data["current"]["ntp"] = {"timesyncd": state.ntp.timesyncd, "ntpdate": state.ntp.ntpdate,
                                      "offset_s": state.ntp.offset}
        return Plan(changes + ntp, data, [f"{zone} ({state.method}; date {state.date})", *ntp_notes])

    async def verify(self, apply: ApplyContext, desired: TimeSettings, state: TimeState, plan: Plan) -> str | None:
        target = _q(desired.localtime_target)
        probe = Probe().file(LOCALTIME).file(TIMEZONE_FILE, content=True)
        probe.command("localtime_real", f"readlink -f {LOCALTIME}")
        probe.command("zone_offset", f"date +%z; TZ=:{target} date +%z")
        probe.command("date", "date '+%Z %z'")
        result = await probe.run(apply.session, sudo=apply.sudo, timeout=apply.timeout)
        local = result.file(LOCALTIME)
        if not (_first_line(result, "localtime_real") == state.target_real
                or (local.kind == "file" and local.sha256 == state.target.sha256)):
            return f"{LOCALTIME} does not resolve to {desired.localtime_target} after the change"
        if not state.slackware and (result.file(TIMEZONE_FILE).content or "").strip() != desired.timezone:
            return f"{TIMEZONE_FILE} does not say {desired.timezone} after the change"
        offsets = result.outputs["zone_offset"].stdout.split()
        if len(offsets) != 2 or offsets[0] != offsets[1]:
            return f"the endpoint's clock does not read the new zone (date +%z: {' vs '.join(offsets) or '?'})"
        plan.data["after"] = {"date": _first_line(result, "date")}
        return None
