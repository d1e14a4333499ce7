"""What the daemon tells the control plane, and when (contract v1, `core.fleet_contract`).

- A check-in after the first config is loaded, after every config refresh (whatever its outcome)
  and every `PARAM_HEARTBEAT_INTERVAL` seconds (default 60): proxy id, host name, image version and digest,
  config version applied, start time and uptime, outbox depth, the last error still standing.
- A run report after every scheduled run, including a run that failed before any host (its
  `error`); skipped ticks and actions this version lacks are not runs.
- Both are spooled (the durable outbox on the state volume) and sent by the background delivery
  (`daemon.delivery`): the scheduler only waits for the spool's commit, in a worker thread.
- The last error is the newest of the problems still standing: a failed config refresh (until a
  refresh succeeds), a run that ended in error (until that action runs again without one), a
  delivery that left items waiting (until one succeeds), an outbox that cannot be written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.fleet_contract import DEFAULT_HEARTBEAT_INTERVAL_S
from flageemonitor.core.results import RunReport
from flageemonitor.proxy.config_fetch import display_url
from flageemonitor.proxy.controlplane import bodies, identity, outbox
from flageemonitor.proxy.controlplane.outbox import PassResult
from flageemonitor.proxy.controlplane.sender import Target
from flageemonitor.proxy.daemon.delivery import BI_INTERVAL_S, Delivery
from flageemonitor.proxy.daemon.threads import in_thread
from flageemonitor.proxy.spool import SpoolError

log = logging.getLogger("flageemonitor.daemon")

DELIVERY_ERROR = "delivery"


class Reports:
    def __init__(self, state_dir: Path, target: Target | None, *, config: Callable[[], BotConfig | None],
                 started_at: str, backlog_interval_s: float = BI_INTERVAL_S) -> None:
        self.state_dir = state_dir
        self.target = target
        self._config = config
        self.started_at = started_at
        self._t0 = time.monotonic()
        self.proxy_id: str | None = None
        self._errors: dict[str, tuple[float, str]] = {}
        self._errors_lock = threading.Lock()
        self._checkin_due = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivery = Delivery(state_dir, target, stop=self._stop, config=config, interval=self.interval,
                                 on_pass=self._after_pass, backlog_interval_s=backlog_interval_s)

    # --- lifecycle
    def start(self) -> None:
        """Start the background delivery, and the check-ins when a control plane is configured."""
        if self.target is not None:
            try:
                self.proxy_id = identity.proxy_id(self.state_dir)
            except OSError as exc:
                log.warning("cannot keep a proxy id in %s (%s): nothing is reported to the control plane",
                            self.state_dir, exc)
                self.target = self.delivery.target = None
            else:
                log.info("proxy id %s: check-ins go to %s, run reports to %s (through the outbox)", self.proxy_id,
                         display_url(self.target.url("checkin")), display_url(self.target.url("runs")))
        self.delivery.start()
        if self.target is not None:
            self._task = asyncio.create_task(self._checkins(), name="checkins")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.delivery.stop()

    def interval(self) -> float:
        config = self._config()
        return float(config.PARAM_HEARTBEAT_INTERVAL if config else DEFAULT_HEARTBEAT_INTERVAL_S)

    # --- errors
    def note_error(self, key: str, message: str) -> None:
        with self._errors_lock:
            self._errors[key] = (time.time(), message)

    def clear_error(self, key: str) -> None:
        with self._errors_lock:
            self._errors.pop(key, None)

    def last_error(self) -> str | None:
        with self._errors_lock:
            return max(self._errors.values())[1] if self._errors else None

    def _after_pass(self, result: PassResult) -> None:
        if result.waiting is not None:
            self.note_error(DELIVERY_ERROR, f"reports wait in the outbox: {result.waiting.message}")
        elif not result.busy:
            with self._errors_lock:
                recovered = self._errors.pop(DELIVERY_ERROR, None) is not None
            if recovered and self.target is not None:
                self.checkin_now()  # the check-in that just went out still named the outage

    # --- check-ins
    def checkin_now(self) -> None:
        self._checkin_due.set()

    async def _checkins(self) -> None:
        # the first one waits for the first config refresh (or one interval), so it names a config version
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._checkin_due.wait(), timeout=self.interval())
            self._checkin_due.clear()
            try:
                await self._checkin()
            except Exception:  # a bug in one check-in must not end the check-ins for good
                log.exception("check-in failed")

    async def _checkin(self) -> None:
        assert self.proxy_id is not None
        config = self._config()
        proxy_id, version = self.proxy_id, config.CONFIG_VERSION if config else None

        def spool() -> None:
            body = bodies.checkin_body(
                proxy_id=proxy_id, hostname=identity.hostname(), image_version=identity.image_version(),
                image_digest=identity.image_digest(), config_version=version, started_at=self.started_at,
                uptime_s=time.monotonic() - self._t0, spool_depth=outbox.depth(self.state_dir),
                last_error=self.last_error())
            outbox.put_checkin(self.state_dir, body)

        if await self._spooled("check-in", spool):
            self.delivery.wake()

    # --- run reports
    async def report_run(self, report: RunReport | dict[str, Any], *, run_id: str, error: str | None = None) -> None:
        """Spool one scheduled run's report (a RunReport, or `bodies.failed_run(...)` with `error`)."""
        if self.target is None or self.proxy_id is None:
            return
        body = bodies.run_body(report, proxy_id=self.proxy_id, run_id=run_id, trigger="schedule", error=error)
        config = self._config()
        max_bytes = (config.PARAM_SPOOL_MAX_MB if config else 256) * 1024 * 1024
        if await self._spooled(f"run report {body['run_id']}",
                               lambda: outbox.put_run(self.state_dir, body, max_bytes)):
            self.delivery.wake()

    async def _spooled(self, what: str, write: Callable[[], None]) -> bool:
        try:
            await in_thread(write)
        except (SpoolError, OSError) as exc:
            log.warning("cannot spool the %s: %s", what, exc)
            self.note_error("outbox", f"cannot spool the {what}: {exc}")
            return False
        self.clear_error("outbox")
        return True

