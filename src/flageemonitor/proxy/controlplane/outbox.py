"""The control plane's queues in the proxy's outbox, and one delivery pass over them.

- `controlplane.checkin` holds the latest check-in only (a new one replaces it: only the latest
  state matters). `controlplane.runs` holds run reports in the order the runs ended; a report
  leaves only once the server answered 2xx (201 stored, or 200 already stored: the run id makes
  a resend harmless), so a report arrives once, in order, whatever crashes or outages happen in
  between. Both are bounded like every spool queue (`PARAM_SPOOL_MAX_MB`, oldest dropped, logged).
- A pass sends the check-in, then the reports, oldest first, and stops at the first item that
  must wait (server unreachable, 5xx, 429, token or scope refused): later items never overtake
  it. A body the server refuses for good (a 4xx such as 422) moves to `<queue>.rejected` with an
  ERROR line, and the queue goes on.
- One process delivers at a time (the queue's consumer lock); every pass is bounded in time.
- What the operator must fix (a token without `report:write`, a rejected token, a server without
  the endpoints) is logged once per process with what to do; an unreachable server once per
  outage, and its return with what was delivered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flageemonitor.core.redact import redact
from flageemonitor.core.results import RunReport
from flageemonitor.proxy.controlplane.bodies import encode, run_body
from flageemonitor.proxy.controlplane.identity import proxy_id
from flageemonitor.proxy.controlplane.sender import Answer, Sender, Target, target_from_env
from flageemonitor.proxy.spool import DEFAULT_MAX_BYTES, Spool, SpoolError, consumer_lock, spool_path

log = logging.getLogger("flageemonitor.controlplane")

CHECKIN_QUEUE = "controlplane.checkin"
RUNS_QUEUE = "controlplane.runs"
ENDPOINTS = {CHECKIN_QUEUE: "checkin", RUNS_QUEUE: "runs"}
LOCK_NAME = "controlplane"
PASS_DEADLINE_S = 120.0
PEEK = 20


def open_spool(state_dir: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Spool:
    return Spool(spool_path(state_dir), max_bytes=max_bytes)


def put_run(state_dir: Path, body: dict[str, Any], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Spool one run report (durable once this returns); raises SpoolError."""
    wire = encode(body)
    with open_spool(state_dir, max_bytes) as spool:
        spool.put(RUNS_QUEUE, [(wire, 1)])


def put_checkin(state_dir: Path, body: dict[str, Any]) -> None:
    """Replace the spooled check-in with this one; raises SpoolError."""
    with open_spool(state_dir) as spool:
        spool.replace(CHECKIN_QUEUE, [(encode(body), 1)])


def depth(state_dir: Path) -> int:
    """Items waiting in the whole outbox (BI batches and run reports), not counting the check-in
    itself nor the `.rejected` queues kept for people."""
    path = spool_path(state_dir)
    if not path.exists():
        return 0
    with Spool(path) as spool:
        return sum(q.items for q in spool.stats()
                   if q.queue != CHECKIN_QUEUE and not q.queue.endswith(".rejected"))


@dataclass
class PassResult:
    delivered: int = 0
    refused: int = 0
    waiting: Answer | None = None  # why the pass stopped with items left
    busy: bool = False  # another process is delivering

    @property
    def failed(self) -> bool:
        return self.waiting is not None


class _Notices:
    """Log what needs a person once per process, an outage once per outage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._said: set[str] = set()
        self._outage = False

    def once(self, key: str) -> bool:
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
            return True

    def failed(self, answer: Answer, left: int) -> None:
        msg = redact(answer.message)
        if answer.status == 403 and answer.error == "scope_denied":
            if self.once("scope"):
                log.warning("control plane: %s. The token needs the scope report:write: issue one with "
                            "`flageemonitor-server token issue` (it is granted by default) and set "
                            "FLAGEEMONITOR_TOKEN. %d item(s) wait in the outbox (bounded by PARAM_SPOOL_MAX_MB).",
                            msg, left)
            return
        if answer.status in (401, 403):
            if self.once("token"):
                log.warning("control plane: %s. Reports and check-ins wait in the outbox until the token is "
                            "fixed (%d item(s) now).", msg, left)
            return
        if answer.status == 404:
            if self.once("endpoint"):
                log.warning("control plane: %s: this server does not take reports yet; %d item(s) wait in "
                            "the outbox", msg, left)
            return
        if answer.status == 400:
            if self.once("network"):
                log.warning("control plane: %s: set FLAGEEMONITOR_REDE to this proxy's network; %d item(s) "
                            "wait in the outbox", msg, left)
            return
        with self._lock:
            first, self._outage = not self._outage, True
        (log.warning if first else log.debug)(
            "control plane: %s; %d item(s) wait in the outbox and will be sent in order", msg, left)

    def delivered(self, count: int) -> None:
        with self._lock:
            back, self._outage = self._outage, False
        if back:
            log.info("control plane reachable again: delivered %d waiting item(s)", count)


NOTICES = _Notices()


def deliver(state_dir: Path, target: Target, *, deadline_s: float = PASS_DEADLINE_S,
            max_bytes: int = DEFAULT_MAX_BYTES, sender: Callable[[Target], Sender] = Sender) -> PassResult:
    """One bounded pass over the check-in and run queues; blocking (run it in a worker thread)."""
    if not spool_path(state_dir).exists():
        return PassResult()
    with consumer_lock(state_dir, LOCK_NAME, role="controlplane") as held:
        if not held:
            return PassResult(busy=True)
        try:
            with open_spool(state_dir, max_bytes) as spool:
                return asyncio.run(_deliver(spool, sender(target), deadline_s))
        except SpoolError as exc:
            return PassResult(waiting=Answer("retry", f"outbox unusable: {exc}"))


async def _deliver(spool: Spool, sender: Sender, deadline_s: float) -> PassResult:
    result = PassResult()
    deadline = time.monotonic() + deadline_s
    try:
        for queue, endpoint in ENDPOINTS.items():
            sent = 0
            try:
                while result.waiting is None:
                    items = spool.peek(queue, PEEK)
                    if not items:
                        break
                    for item in items:
                        if time.monotonic() > deadline:
                            result.waiting = Answer("retry", f"pass ended after {deadline_s:g} s")
                            break
                        answer = await sender.post(endpoint, item.body)
                        if answer.kind == "delivered":
                            spool.ack(item)
                            sent += 1
                        elif answer.kind == "refused":
                            spool.move(item, f"{queue}.rejected")
                            result.refused += 1
                            log.error("control plane: %s; the item is kept in %s.rejected", redact(answer.message),
                                      queue)
                        else:
                            spool.note_error(queue, redact(answer.message))
                            result.waiting = answer
                            break
            finally:
                spool.delivered(queue, sent)
                result.delivered += sent
            if result.waiting is not None:
                break
    finally:
        await sender.aclose()
    if result.waiting is not None:
        left = sum(q.items for q in spool.stats(list(ENDPOINTS)))
        NOTICES.failed(result.waiting, left)
    elif result.delivered:
        NOTICES.delivered(result.delivered)
    return result


# --- manual runs (`flageemonitor run`)
MANUAL_TIMEOUT = httpx.Timeout(3.0)
MANUAL_DEADLINE_S = 5.0


def report_manual_run(state_dir: Path, report: RunReport | dict[str, Any], *, max_bytes: int,
                      error: str | None = None) -> None:
    """Spool a manual run's report and try once, briefly, to deliver it; a report that cannot
    leave now stays in the outbox for the daemon. Never raises: reporting never fails a run."""
    target = target_from_env()
    if target is None:
        return
    try:
        body = run_body(report, proxy_id=proxy_id(state_dir), run_id=str(uuid.uuid4()), trigger="manual",
                        error=error)
        put_run(state_dir, body, max_bytes)
    except (SpoolError, OSError) as exc:
        log.warning("run report not kept: %s", exc)
        return
    result = deliver(state_dir, target, deadline_s=MANUAL_DEADLINE_S,
                     sender=lambda t: Sender(t, timeout=MANUAL_TIMEOUT, deadline_s=MANUAL_DEADLINE_S))
    if result.waiting is not None or result.busy:
        log.info("run report %s kept in the outbox; the daemon delivers it", body["run_id"])
