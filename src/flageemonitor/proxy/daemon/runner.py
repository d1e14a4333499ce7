"""The daemon: keep the config fresh and run scheduled actions, in one asyncio loop.

- Start: refresh the config; a failure is logged and the last valid config is used. With no
  valid config at all, retry with backoff (saying so) until one arrives or the daemon is stopped.
- Each tick of an enabled job starts its run unless the previous run of the same job is still
  going (the tick is skipped and logged). A semaphore bounds simultaneous runs.
- After a refresh that changed the config, and on SIGHUP, the schedule is rebuilt; jobs whose
  timing did not change keep their next tick.
- SIGTERM/SIGINT: stop scheduling, let running actions finish for `stop_grace_s`, cancel the
  rest, exit 0.
- With a control plane configured, check-ins and run reports go through the outbox, delivered
  in the background (`daemon.reports`, `daemon.delivery`); the loop never waits on a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flageemonitor.core.catalog import Catalog, load_catalog
from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import ConfigInvalid, ConfigMissing
from flageemonitor.core.results import RunReport
from flageemonitor.proxy import logs, reporting
from flageemonitor.proxy.config_fetch import PLAIN_HTTP_WARNING, Code, Source
from flageemonitor.proxy.configstore import ConfigStore, Outcome
from flageemonitor.proxy.controlplane.bodies import failed_run
from flageemonitor.proxy.controlplane.sender import Target
from flageemonitor.proxy.daemon import memory
from flageemonitor.proxy.daemon.clock import Clock
from flageemonitor.proxy.daemon.reports import Reports
from flageemonitor.proxy.daemon.schedule import Job, Schedule, build_schedule, next_fire, request_fields
from flageemonitor.proxy.daemon.state import HEARTBEAT_NAME, RunHistory, write_json_atomic
from flageemonitor.proxy.daemon.threads import in_thread

log = logging.getLogger("flageemonitor.daemon")

Executor = Callable[[Job, BotConfig], Awaitable[RunReport]]


@dataclass
class DaemonOptions:
    state_dir: Path
    inventory_file: Path | None = None
    max_concurrent_runs: int = 4
    stop_grace_s: float = 8.0
    heartbeat_interval_s: float = 5.0
    initial_backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    backlog_interval_s: float = 60.0  # BI backlog passes between collector runs


def pipeline_executor(options: DaemonOptions, clock: Clock | None = None) -> Executor:
    """Runs go through the same pipeline as `flageemonitor run`. A clock other than the wall
    clock (the tests' accelerated one) is the actions' "now" too (action argument `at`)."""

    async def execute(job: Job, config: BotConfig) -> RunReport:
        from flageemonitor.core.hosts import HostFilter
        from flageemonitor.proxy import pipeline

        req, filters, extra = request_fields(job.args)
        req.update({k: v for k, v in (("batch", job.batch), ("max_fail_percent", job.max_fail_percent))
                    if v is not None})
        if clock is not None and type(clock) is not Clock:
            extra.setdefault("at", clock.now().isoformat())
        inventory = req.pop("inventory_file", None) or options.inventory_file
        request = pipeline.RunRequest(
            action=job.name,
            filters=HostFilter(**filters),
            args=extra,
            inventory_file=Path(inventory) if inventory else None,
            **req,
        )
        report: RunReport = await pipeline.execute(request, config, state_dir=options.state_dir)
        return report

    return execute


def action_available(canonical: str) -> tuple[bool, str]:
    """Whether this version implements the action (the catalog lists more than is implemented)."""
    from flageemonitor.proxy.actions import get_action

    try:
        return get_action(canonical) is not None, "not available in this version"
    except Exception as exc:  # a broken optional module disables its action, not the daemon
        return False, f"cannot load: {type(exc).__name__}: {exc}"


class Daemon:
    def __init__(
        self,
        options: DaemonOptions,
        store: ConfigStore,
        source: Source | None,
        *,
        clock: Clock | None = None,
        catalog: Catalog | None = None,
        executor: Executor | None = None,
        target: Target | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.source = source
        self.clock = clock or Clock()
        self.catalog = catalog or load_catalog()
        self.executor = executor or pipeline_executor(options, self.clock)
        self.history = RunHistory(options.state_dir)
        self.config: BotConfig | None = None
        self.schedule: Schedule | None = None
        self._available: dict[str, tuple[bool, str]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._sem = asyncio.Semaphore(max(1, options.max_concurrent_runs))
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._reload_requested = False
        self._state = "starting"
        self._last_refresh: dict[str, Any] | None = None
        self._started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._last_heartbeat = 0.0
        self.reports = Reports(options.state_dir, target, config=lambda: self.config, started_at=self._started_at,
                               backlog_interval_s=options.backlog_interval_s)

    # --- control
    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stop requested: no new runs; waiting up to %.0fs for running actions", self.options.stop_grace_s)
        self._stop.set()
        self._wake.set()

    def request_reload(self) -> None:
        log.info("SIGHUP: reloading the config from %s", self.store.path)
        self._reload_requested = True
        self._wake.set()

    async def run(self) -> int:
        memory.limit_arenas()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        try:
            self.options.state_dir.mkdir(parents=True, exist_ok=True)
            log.info("daemon starting (pid %d, state dir %s, config %s, source %s)", os.getpid(),
                     self.options.state_dir, self.store.path,
                     self.source.display_url if self.source else "none: local config only")
            if self.source is not None and self.source.plain_http:
                log.warning("%s (%s)", PLAIN_HTTP_WARNING, self.source.display_url)
            self.reports.start()
            await self._initial_config()
            self.reports.checkin_now()
            if self.config is not None and not self._stop.is_set():
                self._state = "running"
                await self._loop()
            await self._drain()
        finally:
            await self.reports.stop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self._state = "stopped"
            self._heartbeat(force=True)
        log.info("daemon stopped")
        return 0

    # --- config
    async def _initial_config(self) -> None:
        self._set_config(self._load_local(quiet=True), reason="local")
        backoff = self.options.initial_backoff_s
        while not self._stop.is_set():
            if self.source is not None:
                outcome = await self._refresh()
                if outcome.changed and outcome.config is not None:
                    self._set_config(outcome.config, reason="fetched")
            elif self.config is None:
                self._set_config(self._load_local(quiet=False), reason="local")
            if self.config is not None:
                return
            self._state = "waiting_config"
            self._heartbeat(force=True)
            log.warning("no valid config yet (%s); retrying in %.0fs", self.store.path, backoff)
            await self._sleep_real(backoff)
            backoff = min(backoff * 2, self.options.max_backoff_s)

    def _load_local(self, quiet: bool) -> BotConfig | None:
        try:
            return self.store.load()
        except (ConfigMissing, ConfigInvalid) as exc:
            if not quiet:
                log.warning("local config unusable: %s", exc)
            return None

    async def _refresh(self) -> Outcome:
        refresh = asyncio.ensure_future(in_thread(lambda: self.store.refresh(self.source)))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            # a stop request does not wait for a slow server (the refresh thread is abandoned;
            # its writes are atomic, so the file is the old or the new config)
            await asyncio.wait({refresh, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not refresh.done():
            refresh.cancel()
            return Outcome(Code.LOCAL, False, "refresh abandoned: the daemon is stopping")
        try:
            outcome = refresh.result()
        except Exception as exc:  # a refresh never stops the daemon: it keeps its last valid config
            outcome = Outcome(Code.LOCAL, False,
                              f"refresh failed: {type(exc).__name__}: {exc}; kept the current config")
        self._last_refresh = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "code": int(outcome.code), "message": outcome.message}
        (log.info if outcome.ok else log.warning)("update-config: %s", outcome.message)
        if outcome.ok:
            self.reports.clear_error("config")
        else:
            self.reports.note_error("config", f"update-config: {outcome.message}")
        self.reports.checkin_now()
        return outcome

    def _set_config(self, config: BotConfig | None, reason: str) -> None:
        if config is None:
            return
        logs.add_config_secrets(config.raw())
        self.config = config
        self._available.clear()
        new = build_schedule(config, self.catalog)
        for warning in new.warnings:
            log.warning("%s", warning)
        now = self.clock.now()
        old_jobs = self.schedule.jobs if self.schedule else {}
        for name, job in new.jobs.items():
            old = old_jobs.get(name)
            tz_same = self.schedule is not None and self.schedule.tz_name == new.tz_name
            if old is not None and tz_same and old.same_timing(job):
                job.next_at = old.next_at
            elif job.enabled:
                job.next_at = next_fire(job.cron, now, new.tz)
        self.schedule = new
        enabled = [j for j in new.jobs.values() if j.enabled]
        log.info("schedule (%s config, version %s, TIMEZONE %s): %s", reason, config.CONFIG_VERSION, new.tz_name,
                 "; ".join(f"{j.name} '{j.cron}' next {_local(j.next_at, new)}" for j in enabled) or "nothing")
        self._wake.set()

    # --- the scheduler loop
    async def _loop(self) -> None:
        while not self._stop.is_set():
            if self._reload_requested:
                self._reload_requested = False
                cfg = self._load_local(quiet=False)
                if cfg is not None:
                    self._set_config(cfg, reason="reloaded")
                else:
                    log.warning("SIGHUP: kept the current schedule")
            assert self.schedule is not None
            now = self.clock.now()
            for job in list(self.schedule.jobs.values()):
                if not job.enabled:
                    continue
                if job.next_at is None:
                    job.next_at = next_fire(job.cron, now, self.schedule.tz)
                if job.next_at <= now:
                    self._fire(job, job.next_at)
                    job.next_at = next_fire(job.cron, now, self.schedule.tz)
            self._heartbeat()
            due = [j.next_at for j in self.schedule.jobs.values() if j.enabled and j.next_at]
            wait = self.options.heartbeat_interval_s
            if due:
                until = (min(due) - self.clock.now()).total_seconds()
                wait = max(0.0, min(wait, self.clock.real_seconds(until) + 0.005))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    def _fire(self, job: Job, scheduled_for: datetime) -> None:
        running = self._running.get(job.name)
        assert self.config is not None
        if running is not None and not running.done():
            log.warning("%s: tick %s skipped: the previous run is still going", job.name, _iso(scheduled_for))
            self._record(job, "skipped_overlap", scheduled_for, detail="previous run still going")
            return
        if job.is_refresh:
            task = asyncio.create_task(self._refresh_job(), name=job.name)
        else:
            if job.name not in self._available:
                self._available[job.name] = action_available(job.name)
            ok, why = self._available[job.name]
            if not ok:
                log.info("%s: skipped: %s", job.name, why)
                self._record(job, "unavailable", scheduled_for, detail=why)
                return
            task = asyncio.create_task(self._run_action(job, self.config, scheduled_for), name=job.name)
        self._running[job.name] = task
        task.add_done_callback(functools.partial(self._done, job.name))

    def _done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._running.get(name) is task:
            del self._running[name]
        if not self._running:
            memory.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: run crashed: %r", name, task.exception())

    async def _refresh_job(self) -> None:
        if self.source is None:  # local mode: pick up edits of the local file
            cfg = self._load_local(quiet=False)
            if cfg is not None and (self.config is None or cfg.raw() != self.config.raw()):
                self._set_config(cfg, reason="local file changed")
            return
        outcome = await self._refresh()
        if outcome.changed and outcome.config is not None:
            self._set_config(outcome.config, reason="fetched")

    async def _run_action(self, job: Job, config: BotConfig, scheduled_for: datetime) -> None:
        try:
            async with self._sem:  # the whole run, its report and its record count against the limit
                await self._run_locked(job, config, scheduled_for)
        except asyncio.CancelledError:
            log.info("%s: tick %s cancelled", job.name, _iso(scheduled_for))
            raise

    async def _run_locked(self, job: Job, config: BotConfig, scheduled_for: datetime) -> None:
        t0 = time.monotonic()
        started = datetime.now(UTC)
        result, detail, summary = "error", "", None
        report: RunReport | None = None
        run_id = str(uuid.uuid4())  # the same id in the run history and on the control plane
        log.info("%s: run started (tick %s)", job.name, _iso(scheduled_for))
        try:
            report = await self.executor(job, config)
            summary = report.summary()
            result = "failed" if report.failed else "ok"
            if report.stopped_after_batch is not None and report.staging is not None:
                result, detail = "stopped", str(report.staging["stop_reason"])  # a staged run's stop rule
            try:
                await in_thread(lambda: reporting.publish(report, config))
            except Exception as exc:  # publish swallows reporter errors; this is a last guard
                log.warning("%s: publishing the report failed: %s", job.name, exc)
        except asyncio.CancelledError:
            result, detail = "cancelled", "stopped by shutdown"
            raise
        except Exception as exc:
            result, detail = "error", f"{type(exc).__name__}: {exc}"
        finally:
            duration = time.monotonic() - t0
            self._record(job, result, scheduled_for, started=started, duration=duration, summary=summary,
                         detail=detail, run_id=run_id)
            counts = ""
            if summary:
                counts = " ".join(f"{k}={v}" for k, v in summary.items() if k != "duration_s" and v)
            (log.info if result == "ok" else log.warning)(
                "%s: run %s in %.1fs %s%s", job.name, result, duration, counts, f" ({detail})" if detail else "")
        error_key = f"run:{job.name}"
        if report is not None:
            self.reports.clear_error(error_key)
            await self.reports.report_run(report, run_id=run_id)
        else:  # the run ended before any host: its report says why
            self.reports.note_error(error_key, f"{job.name}: {detail}")
            started_at = started.isoformat(timespec="seconds")
            await self.reports.report_run(
                failed_run(job.configured_as or job.name, job.name, provider=config.effective_provider,
                           started_at=started_at), run_id=run_id, error=detail)

    def _record(self, job: Job, result: str, scheduled_for: datetime, *, started: datetime | None = None,
                duration: float = 0.0, summary: dict[str, Any] | None = None, detail: str = "",
                run_id: str | None = None) -> None:
        rec: dict[str, Any] = {
            "action": job.name,
            "result": result,
            "tick": _iso(scheduled_for),
            "started_at": (started or datetime.now(UTC)).isoformat(timespec="seconds"),
            "duration_s": round(duration, 3),
            "config_version": self.config.CONFIG_VERSION if self.config else None,
        }
        if run_id is not None:
            rec["run_id"] = run_id
        if job.args:
            rec["args"] = list(job.args)
        if summary is not None:
            rec["summary"] = summary
        if detail:
            rec["detail"] = logs.redact(detail)[:500]
        try:
            self.history.append(rec)
        except OSError as exc:  # a full disk must not stop the schedule
            log.warning("cannot append run history: %s", exc)

    # --- stop
    async def _drain(self) -> None:
        self._state = "stopping"
        tasks = [t for t in self._running.values() if not t.done()]
        if not tasks:
            return
        log.info("waiting for %d running action(s): %s", len(tasks), ", ".join(t.get_name() for t in tasks))
        _, pending = await asyncio.wait(tasks, timeout=self.options.stop_grace_s)
        for task in pending:
            log.warning("%s: still running after %.0fs grace; cancelling", task.get_name(), self.options.stop_grace_s)
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _sleep_real(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    # --- heartbeat
    def _heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_heartbeat < min(1.0, self.options.heartbeat_interval_s):
            return
        self._last_heartbeat = now
        sched = self.schedule
        jobs: dict[str, Any] = {}
        if sched is not None:
            for job in sched.jobs.values():
                jobs[job.name] = {
                    "cron": job.cron,
                    "enabled": job.enabled,
                    "args": list(job.args),
                    "batch": job.batch,
                    "max_fail_percent": job.max_fail_percent,
                    "next": _local(job.next_at, sched) if job.enabled else None,
                    "running": job.name in self._running,
                    "available": self._available.get(job.name, (None, ""))[0],
                }
        data = {
            "pid": os.getpid(),
            "ts": now,
            "state": self._state,
            "started_at": self._started_at,
            "config_path": str(self.store.path),
            "config_version": self.config.CONFIG_VERSION if self.config else None,
            "timezone": sched.tz_name if sched else None,
            "clock_now": _local(self.clock.now(), sched) if sched else None,
            "jobs": jobs,
            "last_refresh": self._last_refresh,
        }
        try:
            write_json_atomic(self.options.state_dir / HEARTBEAT_NAME, data)
        except OSError as exc:
            log.warning("cannot write heartbeat: %s", exc)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _local(dt: datetime | None, sched: Schedule | None) -> str | None:
    if dt is None:
        return None
    return _iso(dt.astimezone(sched.tz)) if sched else _iso(dt)
