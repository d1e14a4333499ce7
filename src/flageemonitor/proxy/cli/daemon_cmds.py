"""`flageemonitor daemon | update-config | status | health`.

Heavy modules (pydantic models, httpx, the scheduler) are imported inside the commands, so that
`health` (the image's HEALTHCHECK) stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", metavar="FILE",
        help="config file (default: $FLAGEEMONITOR_CONFIG_PATH, else <state dir>/config_bot.json)"),
]
FollowConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", metavar="FILE",
        help="config file (default: the one the running daemon uses, else $FLAGEEMONITOR_CONFIG_PATH, "
        "else <state dir>/config_bot.json)"),
]


def register(app: typer.Typer) -> None:
    app.command("daemon", help="Run the scheduler: keep the config fresh and run actions on their schedule.")(daemon)
    app.command(
        "update-config",
        help="Fetch config_bot.json from the server; keep the current one on any failure. "
        "Exit 0 updated/unchanged, 2 not configured, 3 network, 4 token rejected, 5 server error, "
        "6 invalid config, 7 local write failure.",
    )(update_config)
    app.command("status", help="Per action: last run, its counts, next tick; config version.")(status)
    app.command("health", help="Exit non-zero when no valid config exists or the scheduler is stuck.")(health)


def daemon(
    config: ConfigOpt = None,
    inventory_file: Annotated[
        Path | None, typer.Option("--inventory", "--inventory-file", metavar="FILE",
                                  help="YAML file inventory for scheduled runs")
    ] = None,
) -> None:
    """Exec `python -m flageemonitor.proxy.daemon` (same PID, no CLI framework in memory).

    Environment: FLAGEEMONITOR_MAX_CONCURRENT_RUNS (4), _STOP_GRACE seconds (8),
    _HEARTBEAT_INTERVAL seconds between local heartbeat files (5; the check-ins follow the config's
    PARAM_HEARTBEAT_INTERVAL), _CONFIG_RETRY first backoff seconds (5), _BACKLOG_INTERVAL seconds
    between BI backlog passes (60), _REPORTING=false (no check-ins or run reports), _LOG_FORMAT=json.
    """
    import os

    argv = [sys.executable, "-m", "flageemonitor.proxy.daemon"]
    if config is not None:
        argv += ["--config", str(config)]
    if inventory_file is not None:
        argv += ["--inventory-file", str(inventory_file)]
    import signal

    # a SIGHUP sent (by the update wrapper) before the daemon installs its handler must not
    # kill it: an ignored disposition survives exec, the daemon's handler replaces it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - argument list, no shell


def update_config(config: ConfigOpt = None) -> None:
    from flageemonitor.proxy import logs, settings
    from flageemonitor.proxy.config_fetch import PLAIN_HTTP_WARNING
    from flageemonitor.proxy.configstore import ConfigStore, source_from_env

    store = ConfigStore(settings.config_path(config))
    source = source_from_env()
    outcome = store.refresh(source)
    line = f"update-config: {outcome.message}"
    if source is not None and source.plain_http:
        line += f" (warning: {PLAIN_HTTP_WARNING})"
    typer.echo(logs.redact(line), err=not outcome.ok)
    raise typer.Exit(int(outcome.code))


def status(
    config: FollowConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="machine-readable status")] = False,
) -> None:
    data = collect_status(config)
    if json_out:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    d = data["daemon"]
    typer.echo(f"daemon: {d['state']} (pid {d.get('pid')}, heartbeat {d.get('heartbeat_age_s')}s ago)"
               if d.get("pid") else f"daemon: {d['state']}")
    typer.echo(f"proxy id: {data['proxy_id'] or 'none yet (created when the daemon first reports)'}")
    typer.echo(f"config: {data['config']['path']} version {data['config']['version']} "
               f"({'valid' if data['config']['valid'] else 'MISSING/INVALID'}); timezone {data['timezone']}")
    if data.get("last_refresh"):
        typer.echo(f"last refresh: {data['last_refresh'].get('at')} {data['last_refresh'].get('message')}")
    rows = [("action", "schedule", "next tick", "last run", "result", "counts")]
    for a in data["actions"]:
        last = a.get("last_run") or {}
        counts = last.get("summary") or {}
        count_text = " ".join(f"{k}={v}" for k, v in counts.items() if k not in ("duration_s",) and v)
        rows.append((
            a["action"] + ("" if a.get("available", True) is not False else " (n/a)"),
            a["cron"] if a["enabled"] else f"off ({a['cron']})",
            a.get("next") or "-",
            last.get("started_at", "-"),
            last.get("result", "-") + (" (running)" if a.get("running") else ""),
            count_text,
        ))
    _table(rows)
    _print_spool(data.get("spool"))


def _table(rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _print_spool(spool: dict[str, Any] | None) -> None:
    if not spool:
        typer.echo("spool: empty (nothing collected yet)")
        return
    typer.echo("spool (durable outbox):")
    rows: list[tuple[Any, ...]] = [("queue", "batches", "rows", "bytes", "dropped rows", "delivered", "last error")]
    for q in spool["queues"]:
        rows.append((q["queue"], q["items"], q["records"], q["bytes"], q["dropped_records"], q["delivered_items"],
                     (q["last_error"] or "")[:80]))
    _table(rows)
    if spool["cursors"]:
        typer.echo("collector cursors:")
        _table([("collector", "store database", "position", "rows remembered")] + [
            (c["source"], c["origin"], c["position"] or "-", c["remembered_rows"]) for c in spool["cursors"]])


def collect_status(config_path: Path | None) -> dict[str, Any]:
    """Status from the heartbeat and run history; next ticks computed from the config when the
    daemon is not running."""
    from flageemonitor.core.catalog import load_catalog
    from flageemonitor.core.errors import FlageeError
    from flageemonitor.proxy import settings
    from flageemonitor.proxy.daemon.clock import Clock
    from flageemonitor.proxy.daemon.health import DEFAULT_MAX_AGE_S
    from flageemonitor.proxy.daemon.schedule import build_schedule, next_fire
    from flageemonitor.proxy.daemon.state import heartbeat_age, read_heartbeat, read_history

    state = settings.state_dir()
    hb = read_heartbeat(state)
    if config_path is None and hb is not None and hb.get("config_path"):
        config_path = Path(str(hb["config_path"]))  # the file the daemon was started with (--config)
    path = settings.config_path(config_path)
    cfg = None
    cfg_error = None
    try:
        cfg = settings.load_config(config_path)
    except FlageeError as exc:
        cfg_error = str(exc)
    alive = hb is not None and hb.get("state") not in ("stopped",) and heartbeat_age(hb) <= DEFAULT_MAX_AGE_S
    history = read_history(state)
    last: dict[str, dict[str, Any]] = {}
    for rec in history:
        if rec.get("result") != "skipped_overlap":
            last[str(rec.get("action"))] = rec
    actions: list[dict[str, Any]] = []
    if alive and hb is not None:
        for name, job in (hb.get("jobs") or {}).items():
            actions.append({"action": name, **job, "last_run": last.get(name)})
        tz_name = hb.get("timezone")
    else:
        sched = build_schedule(cfg, load_catalog())
        now = Clock().now()
        for job in sched.jobs.values():
            nxt = next_fire(job.cron, now, sched.tz).isoformat(timespec="seconds") if job.enabled else None
            actions.append({"action": job.name, "cron": job.cron, "enabled": job.enabled, "args": list(job.args),
                            "next": nxt, "running": False, "last_run": last.get(job.name)})
        tz_name = sched.tz_name
    daemon_state: dict[str, Any] = {"state": "running" if alive else ("stopped" if hb else "not started")}
    if hb is not None:
        daemon_state.update(pid=hb.get("pid"), heartbeat_age_s=round(heartbeat_age(hb), 1))
        if alive:
            daemon_state["state"] = hb.get("state", "running")
    from flageemonitor.proxy.collectors.status import spool_status
    from flageemonitor.proxy.controlplane.identity import read_proxy_id

    return {
        "proxy_id": read_proxy_id(state),
        "spool": spool_status(state),
        "daemon": daemon_state,
        "config": {"path": str(path), "valid": cfg is not None, "version": cfg.CONFIG_VERSION if cfg else None,
                   "error": cfg_error},
        "timezone": tz_name,
        "last_refresh": hb.get("last_refresh") if hb else None,
        "actions": actions,
    }


def health(
    max_age: Annotated[float, typer.Option(
        "--max-age", metavar="SECONDS", help="heartbeat older than this = stuck")] = 120.0,
    config_only: Annotated[bool, typer.Option("--config-only", help="check the config only, not the daemon")] = False,
    config: FollowConfigOpt = None,
) -> None:
    from flageemonitor.proxy.daemon.health import check

    ok, reason = check(max_age, require_daemon=not config_only, config=config)
    sys.stdout.write(reason + "\n")
    raise typer.Exit(0 if ok else 1)
