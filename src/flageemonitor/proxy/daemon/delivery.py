"""The daemon's background delivery of its outbox; the scheduler never waits on it.

Two lanes, each an asyncio task whose blocking pass runs in a worker thread:

- **control plane** (`controlplane.outbox.deliver`): check-ins and run reports, as soon as one is
  spooled (`wake`), and at least every heartbeat interval. After a pass that left items waiting it
  waits the server's `Retry-After`, else 1, 2, 4 ... seconds, at most one heartbeat interval (so a
  server back from an outage gets the backlog within one heartbeat).
- **BI backlog** (`collectors.backlog.drain_backlog`): the collectors' queues between their runs,
  every `BI_INTERVAL_S` (`FLAGEEMONITOR_BACKLOG_INTERVAL`) while a backlog exists; after a pass
  with errors the interval doubles, up to `BI_BACKOFF_MAX_S`.

A stopping daemon does not wait for a pass: the worker thread is abandoned. Every write a pass
makes is one SQLite commit after the destination's 2xx, so the worst case is one item sent again,
which the server de-duplicates by run id (and the BI by natural key).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.controlplane.outbox import PassResult, deliver
from flageemonitor.proxy.controlplane.sender import Target
from flageemonitor.proxy.daemon.threads import in_thread

log = logging.getLogger("flageemonitor.daemon")

BI_INTERVAL_S = 60.0
BI_BACKOFF_MAX_S = 900.0


class Delivery:
    def __init__(self, state_dir: Path, target: Target | None, *, stop: asyncio.Event,
                 config: Callable[[], BotConfig | None], interval: Callable[[], float],
                 on_pass: Callable[[PassResult], None] | None = None,
                 backlog_interval_s: float = BI_INTERVAL_S) -> None:
        self.state_dir = state_dir
        self.target = target
        self._stop = stop
        self._config = config
        self._interval = interval
        self._on_pass = on_pass
        self._backlog_interval_s = backlog_interval_s
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self.target is not None:
            self._tasks.append(asyncio.create_task(self._control_plane(self.target), name="deliver-controlplane"))
        self._tasks.append(asyncio.create_task(self._bi_backlog(), name="deliver-bi-backlog"))

    def wake(self) -> None:
        """Something was spooled for the control plane: send it now (unless backing off)."""
        self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sleep(self, seconds: float, *, wakeable: bool) -> None:
        waits = [asyncio.ensure_future(self._stop.wait())]
        if wakeable:
            waits.append(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _control_plane(self, target: Target) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = await in_thread(functools.partial(deliver, self.state_dir, target,
                                                           max_bytes=self._max_bytes()))
            except Exception:  # a bug in one pass must not end delivery for good
                log.exception("control plane delivery pass failed")
                failures += 1
                await self._sleep(min(2.0 ** failures, self._interval()), wakeable=False)
                continue
            if self._on_pass is not None:
                self._on_pass(result)
            if result.failed:
                failures += 1
                assert result.waiting is not None
                pause = result.waiting.retry_after
                if pause is None:
                    pause = min(2.0 ** (failures - 1), self._interval())
                await self._sleep(pause, wakeable=False)
                continue
            failures = 0
            await self._sleep(self._interval(), wakeable=True)

    async def _bi_backlog(self) -> None:
        from flageemonitor.proxy.collectors.backlog import drain_backlog

        pause = self._backlog_interval_s
        while not self._stop.is_set():
            await self._sleep(pause, wakeable=False)
            config = self._config()
            if config is None or self._stop.is_set():
                continue
            try:
                results = await in_thread(functools.partial(drain_backlog, config, self.state_dir))
            except Exception:
                log.exception("BI backlog pass failed")
                results = []
            errors = any(r.error for r in results)
            pause = min(pause * 2, BI_BACKOFF_MAX_S) if errors else self._backlog_interval_s

    def _max_bytes(self) -> int:
        config = self._config()
        return (config.PARAM_SPOOL_MAX_MB if config else 256) * 1024 * 1024

