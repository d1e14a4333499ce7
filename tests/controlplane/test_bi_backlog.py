"""The daemon sends the collectors' BI backlog between their runs, without waiting for the next
run (several batches in flight, as a run sends them); a BI that refuses for a while only delays
it. The backlog is what a collector run leaves behind when the BI was down (batches in
`collect_coupons@<store>`); the BI is the stand-in (the customer's service, the only stand-in
here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from devtools.bi_standin import BiStandIn
from devtools.processes import stop_group

from flageemonitor.proxy.collectors.sender import INFLIGHT
from flageemonitor.proxy.daemon.state import read_history
from flageemonitor.proxy.spool import Spool, spool_path
from tests.fixtures.bi import BI_TOKEN
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.collectors]

CLI = str(Path(sys.executable).with_name("flageemonitor"))
QUEUE = "collect_coupons@192.0.2.10"  # a store database nobody reads in this test (TEST-NET-1)


def test_the_daemon_drains_a_bi_backlog_between_collector_runs(tmp_path: Path, bi: BiStandIn) -> None:
    state = tmp_path / "state"
    with Spool(spool_path(state)) as spool:
        spool.put(QUEUE, [(json.dumps([{"Chave": f"K{n:04d}", "n": n}]).encode(), 1) for n in range(12)])
        spool.put(QUEUE + ".rejected", [(b'[{"Chave": "REFUSED"}]', 1)])
    config = tmp_path / "config_bot.json"
    config.write_text(json.dumps({
        "PARAM_REDE": "MLAR", "TIMEZONE": "UTC", "PARAM_INVENTORY": "file",
        "PARAM_IP_CONCENTRADORES": ["192.0.2.10"], "PARAM_BI_SERVER": bi.server,
        "PARAM_BI_CERTI_PATH": str(bi.ca.ca_file), "PARAM_TOKEN_BI": BI_TOKEN, "PARAM_BI_TIMEOUT": 3,
        # no collector runs while the test watches: only the background drain can send
        "PARAM_CRON_ACTIONS": {name: False for name in (
            "install_endpoint_agent", "collect_coupons", "collect_coupon_details", "collect_coupon_lv",
            "refresh_endpoint_printer", "shutdown_endpoint", "config_refresh")},
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGEEMONITOR_", "ARIUSMONITOR_"))}
    env.update(FLAGEEMONITOR_STATE_DIR=str(state), FLAGEEMONITOR_BACKLOG_INTERVAL="1", PYTHONUNBUFFERED="1")
    bi.behave("fail", 503)
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([CLI, "daemon", "--config", str(config)], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # refused: the pass stops, and the next pass (after a backoff) starts again from the oldest
        # batch; while the BI refuses, nothing beyond the in-flight window is sent
        def refused_keys() -> list[str]:
            return [b.rows[0]["Chave"] for b in bi.batches()]

        wait_until(lambda: refused_keys().count("K0000") >= 2, 60, "the oldest batch refused twice")
        assert set(refused_keys()) <= {f"K{n:04d}" for n in range(INFLIGHT)}, log.read_text()[-3000:]
        bi.behave("ok")
        with Spool(spool_path(state)) as spool:
            wait_until(lambda: not spool.peek(QUEUE), 60, "the backlog sent")
            (stats,) = spool.stats([QUEUE])
            rejected = spool.peek(QUEUE + ".rejected")
        acked = [b.rows[0]["Chave"] for b in bi.batches() if b.acked]
        # each once (batches spooled together may be in flight together and answered in any order)
        assert sorted(acked) == [f"K{n:04d}" for n in range(12)], acked
        assert stats.delivered_items == 12 and len(rejected) == 1  # kept for people, never re-sent
        assert read_history(state) == [], "no collector ran: the daemon's drain sent it"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        stop_group(proc)
