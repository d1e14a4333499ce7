"""Delivery of a spool queue with several batches in flight, against the BI stand-in (the BI is the
customer's third-party service) and a real spool file: every batch acknowledged exactly once, a
failed or dropped batch sent again, later transactions kept behind earlier ones."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
from devtools.bi_standin import Batch, BiStandIn

from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.proxy.collectors.sender import INFLIGHT, Delivery, Sender
from flageemonitor.proxy.spool import Spool, spool_path
from tests.fixtures.bi import BI_TOKEN

pytestmark = pytest.mark.collectors

QUEUE = "collect_coupons@127.0.0.1"
ROWS = 3


def _config(bi: BiStandIn) -> BotConfig:
    return validate_config({"PARAM_REDE": "R", "PARAM_BI_SERVER": bi.server, "PARAM_TOKEN_BI": BI_TOKEN,
                            "PARAM_BI_CERTI_PATH": str(bi.ca.ca_file), "PARAM_BI_TIMEOUT": 10})


def _fill(state: Path, groups: list[int]) -> list[list[str]]:
    """One spool transaction per group, `n` batches each; returns each group's keys."""
    out = []
    with Spool(spool_path(state)) as spool:
        for g, n in enumerate(groups):
            keys = [f"{g}-{i}-{r}" for i in range(n) for r in range(ROWS)]
            bodies = [(json.dumps([{"Chave": k} for k in keys[i * ROWS:(i + 1) * ROWS]]).encode(), ROWS)
                      for i in range(n)]
            spool.put(QUEUE, bodies)
            out.append(keys)
    return out


def _sender(bi: BiStandIn, state: Path) -> Sender:
    done = threading.Event()
    done.set()  # the reader is done: drain what is spooled
    return Sender(_config(bi), Delivery(spool_path(state), QUEUE, "/cupons/batch", 1 << 26, 60), done,
                  threading.Event())


def _left(state: Path) -> int:
    with Spool(spool_path(state)) as spool:
        return sum(q.items for q in spool.stats([QUEUE]))


def _acked_keys(batches: list[Batch]) -> Counter[str]:
    return Counter(r["Chave"] for b in batches if b.acked for r in b.rows)


def test_batches_are_in_flight_together_and_a_dropped_round_is_sent_again(bi: BiStandIn, tmp_path: Path) -> None:
    (keys,) = _fill(tmp_path, [10])
    bi.behave("hang")
    sender = _sender(bi, tmp_path)
    thread = threading.Thread(target=sender.run)
    thread.start()
    try:
        assert bi.wait_for_batches(INFLIGHT, timeout=60), "the sender never reached the BI"
        assert len(bi.batches()) == INFLIGHT and not any(b.acked for b in bi.batches())
    finally:
        bi.behave("ok")  # the held requests are dropped unanswered, then the BI answers again
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert sender.error == "" and sender.sent == len(keys) and _left(tmp_path) == 0
    assert _acked_keys(bi.batches()) == Counter(keys), "every row acknowledged exactly once"


def test_a_failed_batch_is_sent_again_and_acknowledged_ones_never(bi: BiStandIn, tmp_path: Path) -> None:
    first, second = _fill(tmp_path, [6, 6])
    bi.behave("fail", 503, after=2, times=1)  # the third request to arrive fails, the rest succeed
    sender = _sender(bi, tmp_path)
    sender.run()
    batches = bi.batches()
    assert sender.error == "" and sender.sent == len(first) + len(second) and _left(tmp_path) == 0
    assert _acked_keys(batches) == Counter(first + second), "every row acknowledged exactly once"
    failed = [b for b in batches if not b.acked]
    assert len(failed) == 1 and len(batches) == 12 + 1, "only the failed batch is sent twice"
    group = {k: n for n, keys in enumerate((first, second)) for k in keys}
    acked = [b for b in batches if b.acked]
    firsts = [b for b in acked if group[b.rows[0]["Chave"]] == 0]
    seconds = [b for b in acked if group[b.rows[0]["Chave"]] == 1]
    last_ack = max(b.acked_at or 0 for b in firsts)
    assert all(b.arrived > last_ack for b in seconds), "a later transaction waits for the earlier one"


def test_a_bi_down_leaves_everything_spooled(bi: BiStandIn, tmp_path: Path) -> None:
    (keys,) = _fill(tmp_path, [5])
    bi.behave("fail", 503)
    sender = _sender(bi, tmp_path)
    sender.run()
    assert "503" in sender.error and sender.sent == 0 and _left(tmp_path) == 5
    assert 0 < len(bi.batches()) <= 3 * INFLIGHT, "three rounds, each at most INFLIGHT batches"
    bi.behave("ok")
    again = _sender(bi, tmp_path)
    again.run()
    assert again.error == "" and _left(tmp_path) == 0 and _acked_keys(bi.batches()) == Counter(keys)
