"""Deliver one spool queue to the BI: several batches in flight, each removed when acknowledged.

Rules:

- Batches are sent in spool order, at most `INFLIGHT` at once, each on its own kept-alive
  connection (one round trip per batch no longer bounds the throughput).
- A batch leaves the spool as soon as the BI answered 2xx (the answers that arrived together are
  removed in one commit): a crash re-sends only batches not yet acknowledged.
- Only batches spooled together (one reader transaction: rows of one read, each a distinct row)
  are in flight together. A batch spooled later waits until every earlier one is acknowledged, so
  two versions of a row (a row changed within the look-back, read again by a later run) reach
  the BI in the order they were read.
- A refused batch (4xx) moves to `<queue>.rejected` with an ERROR line. When the BI is unavailable
  nothing new is sent; the batches in flight finish; after a backoff the oldest batch not yet
  acknowledged is sent first. After `MAX_FAILURES` such rounds in a row the rest waits for the
  next run.
- Once the reader is done the sender has `drain_s` seconds; what is left stays spooled.
"""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import FlageeError
from flageemonitor.proxy.collectors.bi import BiClient, BiError, BiRejected
from flageemonitor.proxy.spool import Item, Spool

log = logging.getLogger("flageemonitor.collectors")

INFLIGHT = 4
MAX_FAILURES = 3
BACKOFF_S = (1.0, 2.0, 4.0)
PEEK = 20


@dataclass(frozen=True)
class Delivery:
    """Where and how one queue is delivered."""

    spool_file: Path
    queue: str
    bi_path: str  # the BI endpoint, e.g. /cupons/batch
    max_bytes: int
    drain_s: float
    inflight: int = INFLIGHT


class Sender:
    """Drains a queue while its reader fills it; `run` in a thread of its own."""

    def __init__(self, config: BotConfig, delivery: Delivery, reader_done: threading.Event,
                 wake: threading.Event) -> None:
        self.config, self.d = config, delivery
        self.reader_done, self.wake = reader_done, wake
        self.sent = self.rejected = self.items = 0
        self.error = ""
        self._stopping = False  # out of time: nothing new, then return

    def run(self) -> None:
        clients: queues.SimpleQueue[BiClient] = queues.SimpleQueue()
        opened: list[BiClient] = []
        try:
            for _ in range(max(1, self.d.inflight)):
                opened.append(BiClient(self.config))
                clients.put(opened[-1])
            with Spool(self.d.spool_file, max_bytes=self.d.max_bytes, durable=False) as spool, \
                    ThreadPoolExecutor(len(opened), thread_name_prefix=f"post-{self.d.queue}") as pool:
                try:
                    self._drain(spool, pool, clients)
                finally:
                    spool.delivered(self.d.queue, self.items)
        except FlageeError as exc:
            self.error = str(exc)
        except Exception as exc:  # reported with the concentrator, never a silent thread death
            log.exception("%s: sender failed", self.d.queue)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            for c in opened:
                c.close()

    def _post(self, clients: queues.SimpleQueue[BiClient], item: Item) -> None:
        client = clients.get()
        try:
            client.post(self.d.bi_path, item.body)
        finally:
            clients.put(client)

    def _drain(self, spool: Spool, pool: ThreadPoolExecutor, clients: queues.SimpleQueue[BiClient]) -> None:
        failures = 0
        deadline: float | None = None
        pending: deque[Item] = deque()  # peeked, not yet sent
        inflight: dict[Future[None], Item] = {}
        last_id = 0  # the newest item peeked: the next peek starts after it
        failing = False  # the BI failed this round: nothing new until the batches in flight are back
        while True:
            if deadline is None and self.reader_done.is_set():
                deadline = time.monotonic() + self.d.drain_s
            if not pending and not failing and not self._stopping:
                done_reading = self.reader_done.is_set()  # before the peek, so the last commit is seen
                pending.extend(spool.peek(self.d.queue, PEEK, after=last_id))
                if pending:
                    last_id = pending[-1].id
                elif not inflight:
                    if done_reading:
                        return
                    self.wake.wait(0.5)
                    self.wake.clear()
                    continue
            while pending and not failing and not self._stopping and len(inflight) < self.d.inflight:
                item = pending[0]
                if inflight and item.created != next(iter(inflight.values())).created:
                    break  # spooled by a later transaction: after the earlier ones are acknowledged
                if deadline is not None and time.monotonic() > deadline:
                    self.error = (f"sending stopped after PARAM_COLLECTOR_DRAIN_S={self.d.drain_s:g}s; "
                                  "the rest stays spooled")
                    self._stopping = True
                    break
                pending.popleft()
                inflight[pool.submit(self._post, clients, item)] = item
            if inflight:
                before = self.items
                failing = self._collect(spool, inflight, failing)
                if self.items > before and not failing:
                    failures = 0
            if inflight or not (failing or self._stopping):
                continue
            if self._stopping:
                return
            failures += 1
            log.warning("%s: %s (attempt %d of %d)", self.d.queue, self.error, failures, MAX_FAILURES)
            spool.note_error(self.d.queue, self.error)
            if failures >= MAX_FAILURES:
                return
            threading.Event().wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1])
            failing, pending, last_id = False, deque(), 0  # again from the oldest batch not acknowledged

    def _collect(self, spool: Spool, inflight: dict[Future[None], Item], failing: bool) -> bool:
        """Wait for at least one answer; remove the acknowledged batches in one commit, move the
        refused ones aside. Returns whether the BI failed this round."""
        finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
        acked: list[Item] = []
        for future in sorted(finished, key=lambda f: inflight[f].id):
            item = inflight.pop(future)
            exc = future.exception()
            if exc is None:
                acked.append(item)
            elif isinstance(exc, BiRejected):
                spool.move(item, f"{self.d.queue}.rejected")
                self.rejected += item.records
                log.error("%s: BI refused a batch of %d rows for good (%s); kept in %s.rejected",
                          self.d.queue, item.records, exc, self.d.queue)
            elif isinstance(exc, BiError):
                if not failing:
                    self.error = str(exc)
                failing = True
            else:
                raise exc
        spool.ack_many(acked)
        self.sent += sum(i.records for i in acked)
        self.items += len(acked)
        if acked and not failing and not self._stopping:
            self.error = ""
        return failing
