"""The BI collectors against two real MariaDB concentrators and the BI stand-in: incremental
cursor, durable spool, nothing lost, nothing sent twice by design."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from devtools.bi_standin import BiStandIn
from devtools.storedb import insert_nfce, nfce_row, nfce_rows

from flageemonitor.proxy.collectors.sender import INFLIGHT
from flageemonitor.proxy.spool import Spool, spool_path
from tests.collectors.conftest import (
    REDE,
    by_store,
    config,
    config_data,
    cupom_rows,
    insert_cupons,
    local,
    nfce_keys,
    realistic_nfce,
    run,
)
from tests.fixtures.bi import BI_TOKEN
from tests.fixtures.mariadb import StorePair
from tests.fixtures.zabbix import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.collectors]

CLI = str(Path(sys.executable).with_name("flageemonitor"))


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def test_first_run_sends_everything_once_then_nothing_new(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    now = _now()
    expected = realistic_nfce(stores.first, 1, now) + realistic_nfce(stores.second, 2, now, seed=2)
    cfg = config(stores, bi)
    report = run("cupons", cfg, tmp_path)
    assert not report.failed, local(report)
    rows = bi.rows("/cupons/batch")
    keys = nfce_keys(rows)
    assert len(rows) == expected and set(keys.values()) == {1}, keys.most_common(3)
    assert {r["nroloja"] for r in rows} == {1, 2}
    assert all(len(b.rows) <= 200 for b in bi.batches())
    # the payload the BI expects, odd strings and NULLs intact
    statuses = {r["Status"] for r in rows}
    assert {"Cancelado \"pelo\" operador", "O'Brien\\loja", "ação\nnova linha", "🧾 emoji",
            "'; DROP TABLE nfce; --", "unit\x1fand record\x1eseparators"} <= statuses
    nulls = next(r for r in rows if r["nCupom"] == 6000 and r["nroloja"] == 1)
    assert nulls["Pdv"] is None and nulls["vICMS"] is None and nulls["Status"] == "" and nulls["LV"] is None
    sample = next(r for r in rows if r["nCupom"] == 1001 and r["nroloja"] == 1)
    assert sample["rede"] == REDE and sample["emServidor"] == 1 and sample["modelo"] == 65
    assert sample["dEmi"] == sample["DataProc"] and "T" in sample["dEmi"] and isinstance(sample["vPIS"], float)
    per_store = by_store(report)
    assert per_store[stores.first.address]["sent"] + per_store[stores.second.address]["sent"] == expected
    assert all(s["spooled"] == 0 and s["error"] is None for s in per_store.values())

    bi.reset()
    again = run("collect_coupons", cfg, tmp_path)
    assert not again.failed and bi.batches() == [], "a second run must send nothing new"
    assert all(s["new"] == 0 for s in by_store(again).values())


def test_rows_written_between_runs_arrive_once_late_and_changed_ones_too(
    stores: StorePair, bi: BiStandIn, tmp_path: Path
) -> None:
    now = _now()
    realistic_nfce(stores.first, 1, now - timedelta(minutes=2))
    cfg = config(stores, bi)
    assert not run("cupons", cfg, tmp_path).failed
    bi.reset()
    import random

    rng = random.Random(9)
    new = [nfce_row(1, now + timedelta(seconds=n), 202, 8000 + n, rng) for n in range(5)]
    late = nfce_row(1, now - timedelta(minutes=4), 203, 8100, rng)  # written late, inside the look-back
    insert_nfce(stores.first, [*new, late])
    stores.first.execute("UPDATE nfce SET estornado = 1, Status = '135' WHERE NroCupom = 1000",
                         database="retag")  # a coupon cancelled after it was sent
    report = run("cupons", cfg, tmp_path)
    assert not report.failed, local(report)
    got = Counter(r["nCupom"] for r in bi.rows())
    assert got == Counter([8000, 8001, 8002, 8003, 8004, 8100, 1000]), got
    bi.reset()
    assert not run("cupons", cfg, tmp_path).failed and bi.batches() == []


@pytest.mark.parametrize("outage", ["http500", "hang", "cut", "down"])
def test_bi_outage_spools_then_drains_once_per_row(
    outage: str, stores: StorePair, bi: BiStandIn, tmp_path: Path
) -> None:
    now = _now()
    expected = realistic_nfce(stores.first, 1, now) + realistic_nfce(stores.second, 2, now, seed=3)
    data = config_data(stores, bi, PARAM_BI_TIMEOUT=1)
    if outage == "down":
        data["PARAM_BI_SERVER"] = f"127.0.0.1:{_closed_port()}"
    else:
        bi.behave({"http500": "fail", "hang": "hang", "cut": "cut"}[outage])
    from flageemonitor.core.config_model import validate_config

    report = run("cupons", validate_config(data), tmp_path)
    assert report.failed
    per_store = by_store(report)
    assert sum(s["spooled"] for s in per_store.values()) == expected
    assert all(s["sent"] == 0 and s["error"] for s in per_store.values())
    assert bi.rows() == []  # nothing acknowledged
    with Spool(spool_path(tmp_path)) as spool:
        depth = {q.queue: q.records for q in spool.stats()}
    assert depth == {f"collect_coupons@{stores.first.address}": per_store[stores.first.address]["spooled"],
                     f"collect_coupons@{stores.second.address}": per_store[stores.second.address]["spooled"]}

    bi.behave("ok")
    report = run("cupons", config(stores, bi), tmp_path)
    assert not report.failed, local(report)
    keys = nfce_keys(bi.rows())
    assert len(keys) == expected and set(keys.values()) == {1}, keys.most_common(3)
    assert all(s["spooled"] == 0 for s in by_store(report).values())


def _closed_port() -> int:
    from devtools.mariadb import free_port

    return free_port()


def test_one_concentrator_down_does_not_stop_the_others(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    now = _now()
    expected = realistic_nfce(stores.second, 2, now)
    cfg = config(stores, bi, PARAM_IP_CONCENTRADORES=[stores.down, stores.second.address])
    report = run("cupons", cfg, tmp_path)
    assert report.failed
    per_store = by_store(report)
    assert "Can't connect" in per_store[stores.down]["error"] and per_store[stores.down]["read"] == 0
    assert per_store[stores.second.address]["error"] is None
    assert len(nfce_keys(bi.rows())) == expected
    assert stores.password not in json.dumps(report.to_dict())


def test_resend_a_range_on_demand_leaves_the_cursor(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    now = _now()
    realistic_nfce(stores.first, 1, now)
    cfg = config(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address])
    assert not run("cupons", cfg, tmp_path).failed
    cursor = by_store(run("cupons", cfg, tmp_path))[stores.first.address]["cursor"]
    bi.reset()
    start = (now - timedelta(minutes=16)).strftime("%Y-%m-%d %H:%M:%S")
    end = (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    report = run("cupons", cfg, tmp_path, dtini=start, dtfim=end)
    assert not report.failed, local(report)
    got = sorted(r["dEmi"] for r in bi.rows())
    assert got and all(start.replace(" ", "T") <= t <= end.replace(" ", "T") for t in got)
    assert len(got) == 4  # the coupons of 6, 11 and 16 minutes ago, and the changed copy of the first
    bi.reset()
    again = run("cupons", cfg, tmp_path)
    assert by_store(again)[stores.first.address]["cursor"] == cursor and bi.batches() == []


def test_bad_dates_are_refused_before_anything_runs(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    realistic_nfce(stores.first, 1, _now())
    cfg_file = tmp_path / "config_bot.json"
    cfg_file.write_text(json.dumps(config_data(stores, bi)))
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    for args in (["--dtini", "2026-01-01' OR '1'='1"], ["--dtini", "2026-01-01; DROP TABLE nfce"],
                 ["--arg", "dtini=now()"], ["--dtfim", "2026-01-01"],
                 ["--dtini", "2026-02-01", "--dtfim", "2026-01-01"]):
        proc = subprocess.run([CLI, "run", "cupons", "--config", str(cfg_file), *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "dtini" in proc.stderr or "dtfim" in proc.stderr
    assert bi.batches() == [] and not (tmp_path / "state" / "spool.sqlite3").exists()
    assert stores.first.query("SELECT COUNT(*) FROM nfce", database="retag")[0][0] > 0


def test_details_lv_and_sat_config_payloads(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    now = _now()
    insert_cupons(stores.first, cupom_rows(1, now))
    stores.first.executemany("INSERT INTO conf_nfce (nroloja, ChaveConciliaSat) VALUES (%s, %s)",
                             [(1, "a" * 36), (2, "short"), (3, None), (4, "b" * 36)], database="controle")
    cfg = config(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address])
    assert not run("cupons_detalhes", cfg, tmp_path).failed
    details = bi.rows("/cupons/detalhes")
    assert len(details) == 12 and details[0]["rede"] == REDE and "total" in details[0]
    assert {d["FlagFimCupom"] for d in details} == {"S", None}
    bi.reset()
    assert not run("cupons_lv", cfg, tmp_path).failed
    lv = bi.rows("/cupons/detalhes")
    assert sorted(r["NroCupom"] for r in lv) == [300 + n for n in range(12) if n % 5 != 4 and n % 3 != 2]
    assert "total" not in lv[0]
    bi.reset()
    assert not run("sat_config", cfg, tmp_path).failed
    assert sorted((r["nroloja"], r["chaveSeguranca"]) for r in bi.rows("/sat/config")) == [(1, "a" * 36),
                                                                                             (4, "b" * 36)]
    bi.reset()
    stores.first.execute("UPDATE conf_nfce SET ChaveConciliaSat = %s WHERE nroloja = 4", ("c" * 36,),
                         database="controle")
    assert not run("sat_config", cfg, tmp_path).failed
    assert [(r["nroloja"], r["chaveSeguranca"]) for r in bi.rows()] == [(4, "c" * 36)]  # only what changed


def test_status_shows_spool_depth_and_cursors(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    realistic_nfce(stores.first, 1, _now())
    cfg_file = tmp_path / "config_bot.json"
    cfg_file.write_text(json.dumps(config_data(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address],
                                               PARAM_BI_TIMEOUT=1)))
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    bi.behave("fail", 503)
    proc = subprocess.run([CLI, "run", "cupons", "--config", str(cfg_file)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert f"{stores.first.address}: read" in proc.stdout and "spooled" in proc.stdout
    out = proc.stdout + proc.stderr
    assert stores.password not in out and BI_TOKEN not in out
    status = subprocess.run([CLI, "status", "--json", "--config", str(cfg_file)], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    spool = json.loads(status.stdout)["spool"]
    queue = next(q for q in spool["queues"] if q["queue"] == f"collect_coupons@{stores.first.address}")
    assert queue["records"] > 0 and "503" in queue["last_error"]
    assert spool["cursors"][0]["source"] == "collect_coupons" and spool["cursors"][0]["position"]
    text = subprocess.run([CLI, "status", "--config", str(cfg_file)], env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout
    assert f"collect_coupons@{stores.first.address}" in text and "collector cursors:" in text


def test_kill_9_mid_batch_loses_nothing(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    """A real proxy process is killed while the BI holds a batch; after a restart every row is
    delivered, and only rows of batches the BI had not acknowledged arrive twice."""
    now = _now()
    total = 3000
    insert_nfce(stores.first, nfce_rows(total, loja=1, start=now - timedelta(hours=3), span=timedelta(hours=2)))
    cfg_file = tmp_path / "config_bot.json"
    cfg_file.write_text(json.dumps(config_data(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address],
                                               PARAM_BI_TIMEOUT=120)))
    env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(tmp_path / "state")}
    bi.behave("hang", after=4)
    proc = subprocess.Popen([CLI, "run", "cupons", "--config", str(cfg_file)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert bi.wait_for_batches(5, timeout=120), "the proxy never reached the BI"
        # every row spooled and the four answered batches removed (the BI's answer and the proxy's
        # acknowledgement are not one instant: a kill in between re-sends an answered batch)
        wait_for("the answered batches left the spool", lambda: _spooled(tmp_path / "state") == total - 4 * 200,
                 deadline_s=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = bi.batches()
    acked_first = Counter(r["Chave"] for b in first if b.acked for r in b.rows)
    unacked_first = Counter(r["Chave"] for b in first if not b.acked for r in b.rows)
    # the batches in flight when the BI started hanging: at least one, at most INFLIGHT
    assert sum(acked_first.values()) == 4 * 200 and 200 <= sum(unacked_first.values()) <= INFLIGHT * 200
    bi.behave("ok")
    restart = subprocess.run([CLI, "run", "cupons", "--config", str(cfg_file)], env=env, capture_output=True,
                             text=True, timeout=300)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    delivered = Counter(r["Chave"] for b in bi.batches() if b.acked for r in b.rows)
    assert len(delivered) == total, "every row must be delivered"
    twice = {k for k, n in delivered.items() if n > 1}
    assert twice <= set(unacked_first), "only rows the BI had not acknowledged may arrive twice"
    assert all(n <= 2 for n in delivered.values())


def _spooled(state: Path) -> int:
    path = spool_path(state)
    if not path.exists():
        return 0
    start = time.monotonic()
    with Spool(path) as spool:
        n = sum(q.records for q in spool.stats())
    assert time.monotonic() - start < 30
    return n


def test_database_and_python_render_the_same_payloads(stores: StorePair) -> None:
    """Servers with JSON_QUOTE build each row's JSON; older ones get columns rendered in Python.
    Both must give the BI the same values, odd strings and NULLs included."""
    from flageemonitor.proxy.collectors.coupon_details import COUPON_DETAILS
    from flageemonitor.proxy.collectors.coupon_lv import COUPON_LV
    from flageemonitor.proxy.collectors.coupons import COUPONS
    from flageemonitor.proxy.collectors.cursor import Cursor
    from flageemonitor.proxy.collectors.engine import Options, fast_conversions, row_pages
    from flageemonitor.proxy.collectors.sat_config import SAT_CONFIG
    from flageemonitor.proxy.collectors.stores import mysql_connect

    now = _now()
    realistic_nfce(stores.first, 1, now)
    insert_cupons(stores.first, cupom_rows(1, now))
    stores.first.executemany("INSERT INTO conf_nfce (nroloja, ChaveConciliaSat) VALUES (%s, %s)",
                             [(1, "a" * 36), (2, 'q"uo\\te' + "x" * 29)], database="controle")
    cfg = config(stores, None, PARAM_COLLECTOR_START_DAYS=0)
    for collector in (COUPONS, COUPON_DETAILS, COUPON_LV, SAT_CONFIG):
        rendered = {}
        for in_database in (True, False):
            def connect(database: str = collector.database) -> Any:
                return mysql_connect(stores.first.address, cfg, database, timeout=10, conv=fast_conversions())

            pages = list(row_pages(collector, connect, Options(rede="MLAR'X"), Cursor(None), in_database))
            payloads = [json.loads(t) for _, texts in pages for t in texts]
            rendered[in_database] = sorted(payloads, key=lambda r: json.dumps(r, sort_keys=True))
        assert rendered[True] and rendered[True] == rendered[False], collector.name


def test_loja_reads_one_store_with_its_own_cursor(stores: StorePair, bi: BiStandIn, tmp_path: Path) -> None:
    now = _now()
    realistic_nfce(stores.first, 1, now)
    realistic_nfce(stores.first, 2, now, seed=5)
    cfg = config(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address])
    assert not run("cupons", cfg, tmp_path, loja="LOJA002").failed
    assert {r["nroloja"] for r in bi.rows()} == {2}
    bi.reset()
    assert not run("cupons", cfg, tmp_path).failed  # the whole store database has its own cursor
    assert {r["nroloja"] for r in bi.rows()} == {1, 2}
    bi.reset()
    assert not run("cupons", cfg, tmp_path, loja="2").failed and bi.batches() == []
