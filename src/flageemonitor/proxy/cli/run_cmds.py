"""`flageemonitor run | plan | actions | version`."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from flageemonitor import __version__
from flageemonitor.core.catalog import load_catalog
from flageemonitor.proxy.actions import implemented


def register(app: typer.Typer) -> None:
    app.command("version", help="Print the proxy version.")(version)
    app.command("actions", help="List the canonical actions and their aliases.")(actions)
    app.command(
        "run",
        help="Run ACTION on the selected endpoints. Exit 0: no host failed; 1: some host failed or a staged run "
        "stopped; "
        "2: usage, unknown action or provider, request refused; 3: config or inventory error; "
        "4: the run's preparation failed (bundle download or checksum), no host contacted.",
    )(run)
    app.command("plan", help="Show what `run ACTION` would do (rollout, compatibility, and for actions that "
                "change endpoints the changes per host, from a read-only probe; the batches and stop rule of a staged "
                "run) without changing anything.")(plan)


def version() -> None:
    typer.echo(__version__)


def actions(json_out: Annotated[bool, typer.Option("--json", help="machine-readable list")] = False) -> None:
    catalog = load_catalog()
    impl = set(implemented())
    rows: list[dict[str, Any]] = []
    for spec in catalog.actions.values():
        provider_names = {
            p.name: sorted(k for k, v in p.external_to_canonical.items() if v == spec.name)
            for p in catalog.providers.values()
        }
        rows.append({
            "name": spec.name,
            "kind": spec.kind.value,
            "min_level": spec.min_level.value,
            "changes_endpoint": spec.changes_endpoint,
            "legacy_aliases": list(spec.legacy_aliases),
            "generic_aliases": list(spec.generic_aliases),
            "provider_names": {k: v for k, v in provider_names.items() if v},
            "implemented": spec.name in impl,
            "summary": spec.summary,
        })
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="FlageeMonitor actions")
    for col in ("canonical", "kind", "level", "aliases", "provider names", "available"):
        # the names an operator has to type are never cut: they wrap at a comma, never mid-name
        table.add_column(col, no_wrap=col == "canonical", overflow="fold")
    for r in rows:
        table.add_row(
            str(r["name"]), str(r["kind"]), str(r["min_level"]),
            ", ".join(r["legacy_aliases"] + r["generic_aliases"]),
            "; ".join(f"{p}: {', '.join(n)}" for p, n in r["provider_names"].items()),
            "yes" if r["implemented"] else "not in this version",
        )
    Console().print(table)


# ------------------------------------------------------------------ run / plan
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_PREPARE = 0, 1, 2, 3, 4
log = logging.getLogger("flageemonitor.cli")

Rede = Annotated[str | None, typer.Option("--rede", "--network", metavar="CODE",
                                          help="network code (default: the configured network)")]
Loja = Annotated[str | None, typer.Option("--loja", metavar="STORE", help="store, e.g. LOJA001 or 1")]
Pdv = Annotated[str | None, typer.Option("--pdv", metavar="CODE", help="endpoint code, e.g. PDV201 or 201")]
PdvIp = Annotated[list[str] | None, typer.Option("--pdv-ip", metavar="IP",
                                                 help="endpoint IP (repeatable or comma-separated)")]
HostGlob = Annotated[str | None, typer.Option("--host", metavar="GLOB", help="host name glob, e.g. 'REDE1-LOJA001-*'")]
Limit = Annotated[int | None, typer.Option("--limit", min=0, metavar="N",
                                          help="at most N hosts (after sorting by name)")]
Tag = Annotated[list[str] | None, typer.Option("--tag", metavar="KEY=VALUE", help="inventory tag (repeatable)")]
AgentStatus = Annotated[int | None, typer.Option(
    "--agent-status", min=0, max=2, metavar="0|1|2",
    help="Zabbix agent availability: 0 unknown, 1 available, 2 unavailable")]
TriggerId = Annotated[list[str] | None, typer.Option(
    "--trigger-id", metavar="ID", help="Zabbix trigger id in PROBLEM state (repeatable or comma-separated)")]
TriggerName = Annotated[str | None, typer.Option("--trigger-name", metavar="NAME",
                                                  help="Zabbix trigger name in PROBLEM state")]
Provider = Annotated[str | None, typer.Option("--provider", metavar="NAME",
                                               help="execution provider (default: config, else arius)")]
CompatModeOpt = Annotated[str | None, typer.Option("--compat-mode", metavar="MODE",
                                                    help="compatibility guard: off, warn or enforce")]
DryRun = Annotated[bool, typer.Option(
    "--dry-run", help="change nothing: rollout and compatibility decisions, and the planned changes of actions "
    "that change endpoints (their read-only probe is the only remote command)")]
AllHosts = Annotated[bool, typer.Option(
    "--all", help="uninstall_endpoint_agent: allow a run without a host filter (every selected endpoint)")]
JsonOut = Annotated[bool, typer.Option("--json", help="print the machine-readable report")]
Concurrency = Annotated[int | None, typer.Option("--concurrency", min=1, metavar="N",
                                                  help="hosts in flight (default: max_threads)")]
Timeout = Annotated[float | None, typer.Option("--timeout", min=0.1, metavar="SECONDS",
                                               help="per remote command (default: config ssh.command_timeout, 120)")]
ConnectTimeout = Annotated[float | None, typer.Option(
    "--connect-timeout", min=0.1, metavar="SECONDS",
    help="SSH connect timeout per host (default: config ssh.timeout, 30); a silent host costs this once")]
ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE",
                                                 help="config_bot.json (default: in the state dir)")]
InventoryFile = Annotated[Path | None, typer.Option("--inventory", metavar="FILE",
                                                    help="YAML file inventory (format: see README, Inventory)")]
ArgOpt = Annotated[list[str] | None, typer.Option("--arg", metavar="KEY=VALUE", help="action option (repeatable)")]
# register_endpoints' options under the original's flag names (scripts and operators use them)
Autoregister = Annotated[bool, typer.Option("--autoregister", help="register_endpoints: create missing hosts")]
FixDivergent = Annotated[bool, typer.Option(
    "--fix-divergent", help="register_endpoints: rename hosts whose IP is known under another name")]
ListOnly = Annotated[bool, typer.Option(
    "--list-missing", "--list-zabbix-only", help="register_endpoints: report only (always reported; kept for scripts)")]
Endpoints = Annotated[Path | None, typer.Option(
    "--endpoints", metavar="FILE", help="register_endpoints: YAML/CSV endpoint list (default: the store databases)")]
DtIni = Annotated[str | None, typer.Option(
    "--dtini", metavar="DATE",
    help="collectors: re-send rows from this date (YYYY-MM-DD[ HH:MM:SS]); the cursor stays")]
DtFim = Annotated[str | None, typer.Option("--dtfim", metavar="DATE",
                                           help="collectors: ... up to this date (needs --dtini)")]
# update_endpoint_timezone's options under the original's flag names; --at for time-dependent actions
TimezoneOpt = Annotated[str | None, typer.Option("--timezone", metavar="ZONE",
                                                 help="update_endpoint_timezone: IANA time zone")]
LocaltimeTarget = Annotated[str | None, typer.Option(
    "--localtime-target", metavar="FILE", help="update_endpoint_timezone: zoneinfo file /etc/localtime points to")]
EnableNtp = Annotated[bool | None, typer.Option(
    "--enable-ntp/--disable-ntp", help="update_endpoint_timezone: configure NTP (default: the config)")]
NtpServer = Annotated[str | None, typer.Option("--ntp-server", metavar="HOST",
                                               help="update_endpoint_timezone: NTP server")]
ForceTimesyncd = Annotated[bool, typer.Option(
    "--force-timesyncd", help="update_endpoint_timezone: start systemd-timesyncd even beside another NTP daemon")]
At = Annotated[str | None, typer.Option(
    "--at", metavar="TIME", help="evaluate time-dependent decisions (the shutdown window) at this ISO 8601 time "
    "instead of now; without an offset it is wall-clock time in the config's TIMEZONE")]


def _batch_spec(value: str | None) -> str | None:
    from flageemonitor.core.staging import parse_batch

    if value is None:
        return None
    try:
        return str(parse_batch(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


Batch = Annotated[str | None, typer.Option(
    "--batch", metavar="N|P%|all", callback=_batch_spec,
    help="run the hosts in batches: N hosts, P% of them (rounded down, at least 1), all (one batch), or a "
    "list such as 1,10% (the last size repeats); default for actions that change endpoints: 5%,100% "
    "(a canary, then the rest)")]
MaxFailPercent = Annotated[float | None, typer.Option(
    "--max-fail-percent", min=0, max=100, metavar="P",
    help="stop before the next batch when more than P% of the hosts attempted so far failed (unreachable, "
    "auth_failed and timeout count as failed); default 0 for actions that change endpoints, else 100")]


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for item in values or [] for v in item.split(",") if v.strip())


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value.strip()
    return out


def run(
    action: Annotated[str, typer.Argument(metavar="ACTION", help="action: canonical name, alias or provider name")],
    rede: Rede = None, loja: Loja = None, pdv: Pdv = None, pdv_ip: PdvIp = None, host: HostGlob = None,
    limit: Limit = None, tag: Tag = None, provider: Provider = None, compat_mode: CompatModeOpt = None,
    dry_run: DryRun = False, json_out: JsonOut = False, concurrency: Concurrency = None,
    timeout: Timeout = None, config: ConfigFile = None, inventory: InventoryFile = None, arg: ArgOpt = None,
    agent_status: AgentStatus = None, trigger_id: TriggerId = None, trigger_name: TriggerName = None,
    autoregister: Autoregister = False, fix_divergent: FixDivergent = False, list_only: ListOnly = False,
    endpoints: Endpoints = None, dtini: DtIni = None, dtfim: DtFim = None, all_hosts: AllHosts = False,
    connect_timeout: ConnectTimeout = None,
    batch: Batch = None, max_fail_percent: MaxFailPercent = None,
    timezone: TimezoneOpt = None, localtime_target: LocaltimeTarget = None,
    enable_ntp: EnableNtp = None, ntp_server: NtpServer = None, force_timesyncd: ForceTimesyncd = False,
    at: At = None,
) -> None:
    from flageemonitor.core.hosts import HostFilter
    from flageemonitor.proxy.pipeline import RunRequest

    if compat_mode is not None and compat_mode.strip().lower() not in {"off", "warn", "enforce"}:
        raise typer.BadParameter(f"{compat_mode!r}: expected off, warn or enforce", param_hint="--compat-mode")
    filters = HostFilter(rede=rede, loja=loja, pdv=pdv, pdv_ip=_split(pdv_ip), host_glob=host, limit=limit,
                         tags=_pairs(tag, "--tag"), agent_status=agent_status, trigger_ids=_split(trigger_id),
                         trigger_name=trigger_name)
    try:
        filters.loja_number  # noqa: B018 - validates --loja early
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--loja") from None
    args = _pairs(arg, "--arg")
    for key, on in (("autoregister", autoregister), ("fix_divergent", fix_divergent)):
        if on:
            args[key] = "1"
    if endpoints is not None:
        args["endpoints"] = str(endpoints)
    _dates(args, dtini, dtfim)
    if all_hosts:
        args["all"] = "1"
    options = {"timezone": timezone, "localtime_target": localtime_target, "ntp_server": ntp_server, "at": at,
               "enable_ntp": None if enable_ntp is None else ("1" if enable_ntp else "0"),
               "force_timesyncd": "1" if force_timesyncd else None}
    args.update({key: value for key, value in options.items() if value is not None})
    if loja:
        args.setdefault("loja", loja)  # local actions that query store databases filter on it too
    request = RunRequest(action=action, filters=filters, provider=provider, compat_mode=compat_mode,
                         dry_run=dry_run, concurrency=concurrency, timeout=timeout, args=args,
                         inventory_file=inventory, batch=batch, max_fail_percent=max_fail_percent)
    raise typer.Exit(run_request(request, config, json_out, connect_timeout=connect_timeout))


def plan(
    action: Annotated[str, typer.Argument(metavar="ACTION", help="action: canonical name, alias or provider name")],
    rede: Rede = None, loja: Loja = None, pdv: Pdv = None, pdv_ip: PdvIp = None, host: HostGlob = None,
    limit: Limit = None, tag: Tag = None, provider: Provider = None, compat_mode: CompatModeOpt = None,
    json_out: JsonOut = False, concurrency: Concurrency = None, timeout: Timeout = None,
    config: ConfigFile = None, inventory: InventoryFile = None, arg: ArgOpt = None,
    agent_status: AgentStatus = None, trigger_id: TriggerId = None, trigger_name: TriggerName = None,
    autoregister: Autoregister = False, fix_divergent: FixDivergent = False, list_only: ListOnly = False,
    endpoints: Endpoints = None, dtini: DtIni = None, dtfim: DtFim = None, all_hosts: AllHosts = False,
    connect_timeout: ConnectTimeout = None,
    batch: Batch = None, max_fail_percent: MaxFailPercent = None,
    timezone: TimezoneOpt = None, localtime_target: LocaltimeTarget = None,
    enable_ntp: EnableNtp = None, ntp_server: NtpServer = None, force_timesyncd: ForceTimesyncd = False,
    at: At = None,
) -> None:
    run(action, rede=rede, loja=loja, pdv=pdv, pdv_ip=pdv_ip, host=host, limit=limit, tag=tag,
        provider=provider, compat_mode=compat_mode, dry_run=True, json_out=json_out, concurrency=concurrency,
        timeout=timeout, config=config, inventory=inventory, arg=arg,
        agent_status=agent_status, trigger_id=trigger_id, trigger_name=trigger_name,
        autoregister=autoregister, fix_divergent=fix_divergent, list_only=list_only, endpoints=endpoints,
        dtini=dtini, dtfim=dtfim, all_hosts=all_hosts, connect_timeout=connect_timeout,
        batch=batch, max_fail_percent=max_fail_percent, timezone=timezone,
        localtime_target=localtime_target, enable_ntp=enable_ntp, ntp_server=ntp_server,
        force_timesyncd=force_timesyncd, at=at)


def _dates(args: dict[str, str], dtini: str | None, dtfim: str | None) -> None:
    """`--dtini/--dtfim` into the action's args, refused here (exit 2) unless they are dates."""
    from flageemonitor.proxy.collectors.dates import BadDate, parse_range

    dtini, dtfim = dtini or args.get("dtini"), dtfim or args.get("dtfim")
    try:
        parse_range(dtini, dtfim)
    except BadDate as exc:
        raise typer.BadParameter(str(exc), param_hint="--dtini/--dtfim") from None
    args.update({k: v for k, v in (("dtini", dtini), ("dtfim", dtfim)) if v})


def _fail(code: int, message: str) -> int:
    from flageemonitor.cli_style import emit_error

    emit_error(message, code, prefix="flageemonitor")
    return code


def run_request(request: Any, config_file: Path | None, json_out: bool, *, connect_timeout: float | None = None) -> int:
    """Load the config, execute, print, publish; returns the exit code."""
    from flageemonitor.core.errors import (
        ActionRefused,
        ConfigInvalid,
        ConfigMissing,
        InventoryError,
        PrepareFailed,
        UnknownAction,
        UnknownProvider,
    )
    from flageemonitor.proxy import logs, reporting, settings
    from flageemonitor.proxy.controlplane.outbox import report_manual_run
    from flageemonitor.proxy.pipeline import ActionNotImplemented, execute

    logs.setup(stream=sys.stderr)
    try:
        config = settings.load_config(config_file)
    except ConfigMissing as exc:
        _diagnose_without_config(request, f"missing: {exc}", json_out)
        return _fail(EXIT_CONFIG, f"config missing: {exc}")
    except ConfigInvalid as exc:
        where = settings.config_path(config_file)
        _diagnose_without_config(request, f"invalid ({where}): {exc}", json_out)
        return _fail(EXIT_CONFIG, f"config invalid ({where}): {exc}")
    logs.add_config_secrets(config.raw())
    if connect_timeout is not None:
        config = config.model_copy(update={"ssh": config.ssh.model_copy(update={"timeout": connect_timeout})})
    state_dir = settings.state_dir()
    max_bytes = config.PARAM_SPOOL_MAX_MB * 1024 * 1024
    progress = _Progress(enabled=not json_out)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    def before_any_host(code: int, message: str) -> int:
        failed = _failed_run(request, config, started_at)
        if failed is not None:  # a run of a known action that ended before any host: the server hears why
            report_manual_run(state_dir, failed, max_bytes=max_bytes, error=message)
        return _fail(code, message)

    try:
        with progress:
            report = asyncio.run(execute(request, config, state_dir=state_dir, progress=progress.advance,
                                         on_selected=progress.set_total))
    except (UnknownAction, UnknownProvider, ActionNotImplemented, ActionRefused) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except PrepareFailed as exc:
        return before_any_host(EXIT_PREPARE, f"{exc}; no host was contacted")
    except InventoryError as exc:
        return before_any_host(EXIT_CONFIG, f"inventory error: {exc}")
    except ConfigInvalid as exc:
        return before_any_host(EXIT_CONFIG, f"config invalid: {exc}; no host was contacted")
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_table(report, request.filters, config.PARAM_REDE)
    reporting.publish(report, config)
    report_manual_run(state_dir, report, max_bytes=max_bytes)
    checks = (report.local or {}).get("checks") or []
    if any(c.get("name") == "inventory" and not c.get("ok") and not c.get("skipped") for c in checks):
        return EXIT_CONFIG  # an unreadable inventory is exit 3 for every action, diagnose_env included
    return EXIT_FAILED if report.failed else EXIT_OK


def _failed_run(request: Any, config: Any, started_at: str) -> dict[str, Any] | None:
    from flageemonitor.core.errors import FlageeError
    from flageemonitor.proxy.controlplane.bodies import failed_run
    from flageemonitor.proxy.pipeline import resolve_action

    try:
        resolved = resolve_action(request, config)
    except FlageeError:
        return None
    return failed_run(resolved.resolution.requested, resolved.spec.name, provider=resolved.resolution.provider,
                      started_at=started_at, dry_run=request.dry_run)


def _diagnose_without_config(request: Any, problem: str, json_out: bool) -> None:
    """`diagnose_env` still reports the proxy checks it can make when the config is unusable."""
    from flageemonitor.core.catalog import load_catalog
    from flageemonitor.core.errors import FlageeError
    from flageemonitor.proxy import settings

    try:
        if load_catalog().resolve(request.action, request.provider).canonical != "diagnose_env":
            return
    except FlageeError:
        return
    from flageemonitor.proxy.actions import diagnose_env as diag

    checks = [diag.Check("config", False, problem), diag.check_control_plane(),
              diag.check_state_dir(settings.state_dir()), diag.check_timezone(None)]
    outcome = diag.summarise(checks)
    if json_out:
        typer.echo(json.dumps({"action": {"requested": request.action, "canonical": "diagnose_env"},
                               "local": {"ok": outcome.ok, "detail": outcome.detail, **outcome.data}}, indent=2))
        return
    for check in checks:
        mark = "skip" if check.skipped else ("ok" if check.ok else "FAIL")
        typer.echo(f"  {mark:4}  {check.name}: {check.detail}")


class _Progress:
    """A Rich progress bar on a terminal (stderr); off a terminal (a wrapper, a log), a line every
    `FLAGEEMONITOR_PROGRESS_EVERY` seconds (10) while hosts are still running, so a run that
    waits on slow or silent endpoints says so. Nothing under --json."""

    def __init__(self, enabled: bool) -> None:
        import threading

        from rich.console import Console

        from flageemonitor.core import env

        self.console = Console(stderr=True)
        self.enabled = enabled and self.console.is_terminal
        self.ticking = enabled and not self.console.is_terminal
        try:
            self.every = float(env.get("PROGRESS_EVERY") or 10.0)
        except ValueError:
            self.every = 10.0
        self._bar: Any = None
        self._task: Any = None
        self._total: int | None = None
        self._done = 0
        self._started = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> _Progress:
        import threading
        import time

        self._started = time.monotonic()
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("[bold]hosts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("hosts", total=None)
        elif self.ticking:
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="flageemonitor-progress")
            self._ticker.start()
        return self

    def _tick(self) -> None:
        import time

        while not self._stop.wait(self.every):
            if self._total:
                elapsed = time.monotonic() - self._started
                sys.stderr.write(f"flageemonitor: {self._done}/{self._total} hosts done, "
                                 f"{self._total - self._done} still running after {elapsed:.0f}s\n")
                sys.stderr.flush()

    def set_total(self, total: int) -> None:
        self._total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, result: Any) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


_COLOURS = {"ok": "green", "changed": "yellow", "skipped": "cyan", "planned": "cyan", "skipped_rollout": "dim",
            "blocked_compat": "magenta"}


def describe_filters(filters: Any, rede: str) -> str:
    """The selection as the operator typed it (`--loja 7 --pdv 201`), for 'no hosts selected'."""
    parts = [f"--rede {filters.rede or rede}"]
    for flag, value in (("--loja", filters.loja), ("--pdv", filters.pdv), ("--host", filters.host_glob),
                        ("--agent-status", filters.agent_status), ("--trigger-name", filters.trigger_name),
                        ("--limit", filters.limit)):
        if value is not None:
            parts.append(f"{flag} {value}")
    parts += [f"--pdv-ip {ip}" for ip in filters.pdv_ip] + [f"--trigger-id {t}" for t in filters.trigger_ids]
    parts += [f"--tag {k}={v}" for k, v in filters.tags.items()]
    return " ".join(parts)


def _print_table(report: Any, filters: Any = None, rede: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    data = report.to_dict()
    title = f"{data['action']['canonical']} ({data['action']['provider']})" + (" - dry run" if report.dry_run else "")
    if report.local is not None:
        console.print(f"[bold]{title}[/bold]: {report.local.get('detail', '')}")
        for check in report.local.get("checks", []):
            mark = "skip" if check.get("skipped") else ("ok" if check["ok"] else "FAIL")
            console.print(f"  {mark:4}  {check['name']}: {check['detail']}", markup=False, soft_wrap=True)
        for line in report.local.get("lines", []):
            console.print(f"  {line}", markup=False, highlight=False)
    if report.hosts:
        table = Table(title=title)
        for col in ("host", "ip", "status", "facts", "s", "detail"):
            table.add_column(col)
        for r in data["hosts"]:
            facts = r["facts"] or {}
            fact_text = f"{facts.get('distro', '')} {facts.get('version', '')} {facts.get('arch', '')}".strip()
            if facts.get("level"):
                fact_text += f" {facts['level']}"
            colour = _COLOURS.get(r["status"], "red")
            table.add_row(r["host"], r["ip"], f"[{colour}]{r['status']}[/{colour}]", fact_text,
                          f"{r['duration_s']:.1f}", r["detail"])
        console.print(table)
    for key, value in sorted(report.prepared.items()):
        console.print(f"{key}: {value.get('summary', value) if isinstance(value, dict) else value}", markup=False)
    _print_changes(console, data["hosts"], report.dry_run)
    if report.staging is not None:
        _print_staging(console, report.staging, report.dry_run)
    summary = data["summary"]
    parts = [f"{k}={v}" for k, v in summary.items() if k not in {"duration_s"} and v]
    if parts:
        console.print(f"summary: {', '.join(parts)} in {summary['duration_s']:.1f}s")
    elif report.local is None:
        where = describe_filters(filters, rede) if filters is not None else "the filters"
        console.print(f"summary: no hosts selected: nothing in the inventory matches {where}", markup=False)
    else:
        console.print(f"summary: no hosts selected in {summary['duration_s']:.1f}s")


def _print_staging(console: Any, staging: dict[str, Any], dry_run: bool) -> None:
    """The batches (names, five at most per batch), the stop rule and where the run stopped."""
    origin = ", the default for actions that change endpoints" if staging["source"] == "default" else ""
    console.print(f"batches ({staging['batch']}{origin}):", markup=False)
    for number, batch in enumerate(staging["batches"], start=1):
        names, more = batch["hosts"][:5], len(batch["hosts"]) - 5
        state = "" if batch["ran"] or dry_run else " - not run"
        count = len(batch["hosts"])
        console.print(f"  {number}: {count} host{'' if count == 1 else 's'}{state}: {', '.join(names)}"
                      + (f" and {more} more" if more > 0 else ""), markup=False)
    console.print(f"stop rule: {staging['rule']}" + ("; a plan probes every host and never stops" if dry_run else ""),
                  markup=False)
    if staging["stopped_after_batch"] is not None:
        console.print(f"[red]stopped[/red]: {staging['stop_reason']}", highlight=False)


def _print_changes(console: Any, hosts: list[dict[str, Any]], dry_run: bool) -> None:
    """Per host, the changes applied (or planned): one line each, unified diffs indented."""
    for r in hosts:
        if not r["changes"]:
            continue
        console.print(f"{r['host']}: {'would change' if dry_run else 'changed'}", markup=False)
        for change in r["changes"]:
            console.print(f"  - {change['summary']}", markup=False)
            for line in (change.get("diff") or "").splitlines():
                console.print(f"      {line}", markup=False)
