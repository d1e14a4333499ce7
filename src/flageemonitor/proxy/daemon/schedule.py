"""The daemon's schedule: which action runs when, built from `PARAM_CRON_ACTIONS`.

Defaults reproduce the original image's cron file (reference §8.8), with the config refresh
hourly. `PARAM_CRON_ACTIONS` keeps its original meaning (a bool enables or disables an action's
default schedule) and also accepts a cron expression or `{cron, args, enabled}` per action, under
its legacy or canonical name. The key `config_refresh` sets the refresh schedule.

Cron expressions are evaluated in the config's `TIMEZONE` with zoneinfo, whatever the
container's `TZ`: the original's cron ran in UTC and shut PDVs down at 20:50 São Paulo time.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from flageemonitor.core import env
from flageemonitor.core.catalog import Catalog
from flageemonitor.core.config_model import BotConfig, CronActionSpec
from flageemonitor.core.errors import UnknownAction

log = logging.getLogger("flageemonitor.schedule")

CONFIG_REFRESH = "config_refresh"


@dataclass(frozen=True)
class DefaultEntry:
    cron: str
    enabled: bool = True
    args: tuple[str, ...] = ()
    batch: str | None = None  # staging of the scheduled run (core/staging.py); None: the action's default


# Routine runs whose selection is mostly endpoints that are switched off (an agent that does not
# answer, a store closed at night) run in one batch: with the canary default, a switched-off
# endpoint in the canary would stop every tick, and being first in name order, forever.
ONE_BATCH = "all"

# canonical action -> the original's schedule (reference §8.8)
DEFAULT_SCHEDULE: dict[str, DefaultEntry] = {
    CONFIG_REFRESH: DefaultEntry("0 * * * *"),
    "install_endpoint_agent": DefaultEntry("*/30 * * * *", args=("--agent-status", "2"), batch=ONE_BATCH),
    "collect_coupons": DefaultEntry("*/5 * * * *"),
    "collect_coupon_details": DefaultEntry("0 * * * *"),
    "collect_coupon_lv": DefaultEntry("*/10 7-23 * * *"),
    # The original wrote `* 1 * * *`, which runs every minute from 01:00 to 01:59 (60 runs a
    # night); the intent was once a night at 01:00.
    "refresh_endpoint_printer": DefaultEntry("0 1 * * *"),
    # only when PARAM_CRON_ACTIONS.status_caixa is truthy (original default false)
    "collect_checkout_status": DefaultEntry("*/3 * * * *", enabled=False),
    # unless PARAM_CRON_ACTIONS.pdv_shutdown is false (original default true)
    "shutdown_endpoint": DefaultEntry("50 23 * * *", enabled=True, batch=ONE_BATCH),
}


@dataclass
class Job:
    name: str  # canonical action, or CONFIG_REFRESH
    cron: str
    enabled: bool
    args: tuple[str, ...] = ()
    configured_as: str | None = None  # the key used in PARAM_CRON_ACTIONS, if any
    next_at: datetime | None = None
    batch: str | None = None  # staging (core/staging.py); None: the action's default
    max_fail_percent: float | None = None

    @property
    def is_refresh(self) -> bool:
        return self.name == CONFIG_REFRESH

    def same_timing(self, other: Job) -> bool:
        return self.cron == other.cron and self.enabled == other.enabled


@dataclass
class Schedule:
    tz: tzinfo
    tz_name: str
    jobs: dict[str, Job] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def schedule_timezone(config: BotConfig | None) -> tuple[tzinfo, str]:
    """The config's TIMEZONE; else the container's TZ (quotes stripped) when valid; else UTC."""
    for candidate in ((config.TIMEZONE if config else None), env.get_plain("TZ")):
        if candidate:
            try:
                return ZoneInfo(candidate), candidate
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("ignoring unknown time zone %r", candidate)
    return ZoneInfo("UTC"), "UTC"


def next_fire(cron: str, after: datetime, tz: tzinfo) -> datetime:
    """The first time strictly after `after` matching `cron` read as wall-clock time in `tz`."""
    local = after.astimezone(tz)
    nxt: datetime = croniter(cron, local).get_next(datetime)
    return nxt


def build_schedule(config: BotConfig | None, catalog: Catalog) -> Schedule:
    """Merge the defaults with PARAM_CRON_ACTIONS; unknown names become warnings, never errors."""
    tz, tz_name = schedule_timezone(config)
    sched = Schedule(tz=tz, tz_name=tz_name)
    for name, d in DEFAULT_SCHEDULE.items():
        sched.jobs[name] = Job(name=name, cron=d.cron, enabled=d.enabled, args=d.args, batch=d.batch)
    provider = config.effective_provider if config else None
    entries: dict[str, Any] = dict(config.PARAM_CRON_ACTIONS) if config else {}
    for key, entry in entries.items():
        if key.strip().lower() == CONFIG_REFRESH:
            canonical = CONFIG_REFRESH
        else:
            try:
                canonical = catalog.resolve(key, provider).canonical
            except UnknownAction as exc:
                sched.warnings.append(f"PARAM_CRON_ACTIONS: {exc}; entry ignored")
                continue
            except Exception as exc:  # unknown provider: resolve with the default one
                sched.warnings.append(f"PARAM_CRON_ACTIONS: {key}: {exc}; entry ignored")
                continue
        base = sched.jobs.get(canonical)
        job = _apply_entry(canonical, key, entry, base, sched.warnings)
        if job is not None:
            sched.jobs[canonical] = job
    return sched


def _apply_entry(canonical: str, key: str, entry: Any, base: Job | None, warnings: list[str]) -> Job | None:
    """The job an entry makes; what it does not say (args, staging) comes from the default job."""
    if isinstance(entry, bool):
        if base is None:
            if entry:
                warnings.append(f"PARAM_CRON_ACTIONS: {key}: has no default schedule; give a cron expression")
            return None
        return Job(canonical, base.cron, entry, base.args, configured_as=key, batch=base.batch)
    if isinstance(entry, str):
        return Job(canonical, entry, True, base.args if base else (), configured_as=key,
                   batch=base.batch if base else None)
    if isinstance(entry, CronActionSpec):
        cron = entry.cron or (base.cron if base else None)
        if cron is None:
            warnings.append(f"PARAM_CRON_ACTIONS: {key}: no cron expression and no default schedule")
            return None
        args = tuple(entry.args) if entry.args else (base.args if base else ())
        staged = entry.batch is not None or entry.max_fail_percent is not None or any(
            flag in a for a in entry.args for flag in ("--batch", "--max-fail-percent"))
        batch = str(entry.batch) if entry.batch is not None else (None if staged or base is None else base.batch)
        max_fail = float(entry.max_fail_percent) if entry.max_fail_percent is not None else None
        return Job(canonical, cron, bool(entry.enabled), args, configured_as=key, batch=batch,
                   max_fail_percent=max_fail)
    warnings.append(f"PARAM_CRON_ACTIONS: {key}: unsupported entry {entry!r}")
    return None


# --- scheduled args -> RunRequest fields -----------------------------------------------------

_REQUEST_FIELDS = {"provider": str, "compat_mode": str, "concurrency": int, "timeout": float,
                   "inventory_file": str, "batch": str, "max_fail_percent": float}
_FILTER_FIELDS = {"rede": str, "loja": str, "pdv": str, "pdv_ip": tuple, "host_glob": str, "host": str,
                  "limit": int, "agent_status": int, "trigger_ids": tuple, "trigger_name": str}
_FLAGS = {"dry_run"}


def request_fields(args: tuple[str, ...] | list[str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split CLI-style args (`--agent-status 2 --dry-run`) into (request, filter, action args).

    Raises ValueError on a malformed list, so a bad schedule entry fails its run with a reason.
    """
    tokens = [t for a in args for t in (shlex.split(a) if " " in a else [a])]
    request: dict[str, Any] = {}
    filters: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise ValueError(f"unexpected argument {tok!r} (options look like --name value)")
        name, _, inline = tok[2:].partition("=")
        key = name.replace("-", "_")
        has_value = bool(inline) or (i + 1 < len(tokens) and not tokens[i + 1].startswith("--"))
        if key in _FLAGS and not inline:
            request[key] = True
            i += 1
            continue
        if not has_value:
            extra[key] = True
            i += 1
            continue
        value = inline or tokens[i + 1]
        i += 1 if inline else 2
        if key in _REQUEST_FIELDS:
            request[key] = _convert(key, value, _REQUEST_FIELDS[key])
        elif key in _FILTER_FIELDS:
            target = "host_glob" if key == "host" else key
            kind = _FILTER_FIELDS[key]
            if kind is tuple:
                filters[target] = (*filters.get(target, ()), *[v for v in value.split(",") if v])
            else:
                filters[target] = _convert(key, value, kind)
        else:
            extra[key] = value
    return request, filters, extra


def _convert(key: str, value: str, kind: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"--{key.replace('_', '-')}: {value!r} is not a valid {kind.__name__}") from None
