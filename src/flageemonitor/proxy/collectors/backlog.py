"""Between a collector's runs, send what its queues still hold (the daemon's background drain).

Without this a backlog left by a BI outage waits for the collector's next run, which may be an
hour away (`cupons_detalhes`) or a day (`sat_config`). Each queue `<collector>@<origin>` of a BI
collector is sent with the same sender a run uses (in order, a batch leaves only once the BI
acknowledged it), for at most `BACKLOG_BUDGET_S` per queue, stopping at the first failure. A
queue a run is sending is left to that run; a run that starts meanwhile waits for the drain to
let go after its current batch. `.rejected` queues are kept for people, never re-sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flageemonitor.core.config_model import BotConfig
from flageemonitor.proxy.collectors.bi import BiClient, BiError
from flageemonitor.proxy.collectors.coupon_details import COUPON_DETAILS
from flageemonitor.proxy.collectors.coupon_lv import COUPON_LV
from flageemonitor.proxy.collectors.coupons import COUPONS
from flageemonitor.proxy.collectors.engine import BacklogSent, BiCollector, send_backlog
from flageemonitor.proxy.collectors.sat_config import SAT_CONFIG
from flageemonitor.proxy.spool import Spool, spool_path

log = logging.getLogger("flageemonitor.collectors.backlog")

BI_COLLECTORS: dict[str, BiCollector] = {c.name: c for c in (COUPONS, COUPON_DETAILS, COUPON_LV, SAT_CONFIG)}


def pending(state_dir: Path) -> list[tuple[BiCollector, str]]:
    """(collector, queue) for every BI queue that holds batches, oldest queue name first."""
    path = spool_path(state_dir)
    if not path.exists():  # a proxy that never collected: nothing to send, and no spool created
        return []
    with Spool(path) as spool:
        stats = spool.stats()
    out = []
    for q in stats:
        collector = BI_COLLECTORS.get(q.queue.partition("@")[0])
        if collector is not None and q.items and not q.queue.endswith(".rejected"):
            out.append((collector, q.queue))
    return out


def drain_backlog(config: BotConfig, state_dir: Path) -> list[BacklogSent]:
    """One pass over every BI queue with a backlog; blocking (run it in a worker thread)."""
    queues = pending(state_dir)
    if not queues:
        return []
    try:
        BiClient(config).close()
    except BiError as exc:  # the collector's own run reports a missing BI setting
        log.debug("BI backlog not sent: %s", exc)
        return []
    results = []
    for collector, queue in queues:
        result = send_backlog(collector, config, state_dir, queue)
        if result is None:
            continue
        results.append(result)
        if result.sent:
            log.info("%s: sent %d spooled row(s) between runs", queue, result.sent)
    return results
