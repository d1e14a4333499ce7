"""The endpoint time settings: which values apply (command line and config), their validation,
and the pure parts of applying them (timesyncd.conf, timedatectl and ntpdate output).

Each setting is the first value found in this chain (the original's order):
1. the command line (`--timezone`, `--localtime-target`, `--enable-ntp`, `--ntp-server`,
   `--force-timesyncd`, or the same names as `--arg KEY=VALUE`);
2. `PDV_TIMEZONE_SETTINGS[PARAM_REDE][key]`;
3. `PDV_TIMEZONE_SETTINGS["default"][key]`;
4. the top-level key (`TIMEZONE`, `TIMEZONE_LOCALTIME_TARGET`, `NTP_ENABLE`, `NTP_SERVER`;
   `force_timesyncd` has none).

Every value is validated here, before any command is built: a time zone is an IANA name
(`Area/Location`, letters, digits, `_+-`), a localtime target an absolute path of the same
characters and `/.`, an NTP server a host name or an IP address. Anything else (`;`, `$(...)`,
quotes, blanks, a newline) is refused with the key that carried it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flageemonitor.core.agent_conf import valid_address
from flageemonitor.core.config_model import BotConfig, TimezoneSettings
from flageemonitor.core.env import truthy

ZONEINFO = "/usr/share/zoneinfo"
_TZ_RE = re.compile(r"[A-Za-z0-9_+-]{1,64}(/[A-Za-z0-9_+-]{1,64}){0,3}")
_PATH_RE = re.compile(r"(/[A-Za-z0-9_+.-]{1,128}){1,16}")
SETTING_KEYS = ("timezone", "localtime_target", "enable_ntp", "ntp_server", "force_timesyncd")
_TOP_LEVEL = {"timezone": "TIMEZONE", "localtime_target": "TIMEZONE_LOCALTIME_TARGET", "enable_ntp": "NTP_ENABLE",
              "ntp_server": "NTP_SERVER"}


class SettingInvalid(ValueError):
    """A time setting is missing or not acceptable; the message names where it came from."""


@dataclass(frozen=True)
class TimeSettings:
    timezone: str
    localtime_target: str  # what /etc/localtime points to (or, on Slackware, is a copy of)
    enable_ntp: bool = False
    ntp_server: str | None = None
    force_timesyncd: bool = False
    sources: tuple[tuple[str, str], ...] = ()  # (setting, where its value came from)

    def to_dict(self) -> dict[str, Any]:
        return {"timezone": self.timezone, "localtime_target": self.localtime_target, "enable_ntp": self.enable_ntp,
                "ntp_server": self.ntp_server, "force_timesyncd": self.force_timesyncd,
                "sources": dict(self.sources)}


def valid_timezone_name(name: str) -> bool:
    return bool(_TZ_RE.fullmatch(name)) and ".." not in name


def valid_path(path: str) -> bool:
    return bool(_PATH_RE.fullmatch(path)) and not any(part in {".", ".."} for part in path.split("/"))


def _layers(config: BotConfig) -> list[tuple[str, TimezoneSettings]]:
    layers = []
    for name in (config.PARAM_REDE, "default"):
        entry = config.PDV_TIMEZONE_SETTINGS.get(name)
        if entry is not None:
            layers.append((f"PDV_TIMEZONE_SETTINGS[{name!r}]", entry))
    return layers


def _pick(key: str, cli: Mapping[str, Any], config: BotConfig) -> tuple[Any, str]:
    value = cli.get(key)
    if value is not None and value != "":
        return value, f"--{key.replace('_', '-')}"
    for where, entry in _layers(config):
        value = getattr(entry, key, None)
        if value is not None and value != "":
            return value, f"{where}.{key}"
    top = _TOP_LEVEL.get(key)
    if top is not None:
        value = getattr(config, top)
        if value is not None and value != "":
            return value, top
    return None, ""


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return truthy(str(value))


def resolve_time_settings(config: BotConfig, cli: Mapping[str, Any]) -> TimeSettings:
    """The settings for this run; raises SettingInvalid naming the offending source."""
    picked = {key: _pick(key, cli, config) for key in SETTING_KEYS}
    tz, tz_from = picked["timezone"]
    if tz is None:
        raise SettingInvalid("no time zone: set TIMEZONE, PDV_TIMEZONE_SETTINGS[<network or default>].timezone "
                             "or --timezone")
    tz = str(tz)
    if not valid_timezone_name(tz):
        raise SettingInvalid(f"{tz_from}: {tz!r} is not an IANA time zone name (like America/Sao_Paulo)")
    target, target_from = picked["localtime_target"]
    if target is None:
        target = f"{ZONEINFO}/{tz}"
    elif not valid_path(str(target)):
        raise SettingInvalid(f"{target_from}: {target!r} is not an absolute path to a zoneinfo file")
    server, server_from = picked["ntp_server"]
    if server is not None:
        server = str(server)
        if not valid_address(server):
            raise SettingInvalid(f"{server_from}: {server!r} is not a host name or an IP address")
    enable, _ = picked["enable_ntp"]
    force, _ = picked["force_timesyncd"]
    sources = tuple((key, where) for key, (value, where) in picked.items() if where)
    return TimeSettings(tz, str(target), _flag(enable) if enable is not None else False, server,
                        _flag(force) if force is not None else False, sources)


# ------------------------------------------------------------------ timedatectl
@dataclass(frozen=True)
class TimedatectlStatus:
    """What `timedatectl status` said (systemd 204 .. 255 wording); `ntp_enabled` is None when it
    does not say, or says systemd has no NTP service to switch on."""

    works: bool
    timezone: str | None = None
    ntp_enabled: bool | None = None
    rtc_local: bool | None = None


def parse_timedatectl(exit_status: int, output: str) -> TimedatectlStatus:
    """`timedatectl status` works when it exits 0 and names the time zone."""
    values: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip().lower()] = value.strip()
    zone = values.get("time zone", "").split(" ", 1)[0] or None
    if exit_status != 0 or zone is None:
        return TimedatectlStatus(False)
    ntp = None
    for key in ("ntp service", "network time on", "ntp enabled", "systemd-timesyncd.service active"):
        if key in values:
            # "n/a": systemd knows no NTP unit on this endpoint, so `set-ntp true` cannot work
            ntp = None if values[key].lower() == "n/a" else values[key].lower() in {"active", "yes"}
            break
    rtc = values.get("rtc in local tz")
    return TimedatectlStatus(True, zone, ntp, rtc.lower() == "yes" if rtc is not None else None)


# ------------------------------------------------------------------ timesyncd.conf
def render_timesyncd_conf(current: str | None, server: str) -> str:
    """timesyncd.conf with `NTP=<server>` and an empty `FallbackNTP=` as the only active NTP
    lines, placed in the `[Time]` section (added when missing); every other line kept."""
    if not valid_address(server):
        raise SettingInvalid(f"{server!r} is not a host name or an IP address")
    lines = (current or "").splitlines()
    kept: list[str] = []
    for line in lines:
        key = line.split("=", 1)[0].strip() if "=" in line and not line.lstrip().startswith(("#", ";")) else ""
        if key in {"NTP", "FallbackNTP"}:
            continue
        kept.append(line)
    wanted = [f"NTP={server}", "FallbackNTP="]
    headers = [i for i, line in enumerate(kept) if line.strip().startswith("[")]
    time_at = next((i for i in headers if kept[i].strip() == "[Time]"), None)
    if time_at is None:
        if kept and kept[-1].strip():
            kept.append("")
        kept += ["[Time]", *wanted]
    else:
        end = next((i for i in headers if i > time_at), len(kept))
        while end > time_at + 1 and not kept[end - 1].strip():
            end -= 1  # before the blank lines that separate the next section
        kept[end:end] = wanted
    return "\n".join(kept) + "\n"


TIMESYNCD_FORCE_DROPIN = (
    "# written by flageemonitor (force_timesyncd): start timesyncd even where another NTP daemon is installed\n"
    "[Unit]\nConditionFileIsExecutable=\n"
)


# ------------------------------------------------------------------ ntpdate
_OFFSET_RE = re.compile(r"(?:adjust|step) time server \S+ offset (-?\d+(?:\.\d+)?) sec")
NTP_TOLERANCE_S = 1.0  # a clock within this of the server is left alone


def parse_ntpdate_offset(output: str) -> float | None:
    """The offset (seconds) `ntpdate -q` reports on its summary line; None when the server did
    not answer."""
    found = _OFFSET_RE.findall(output)
    return float(found[-1]) if found else None
