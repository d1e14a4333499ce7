"""Grouped reads against a real MariaDB: the database hands over each group of rows as one string,
rows sharing a position are never split across pages, a group too long for the session's
GROUP_CONCAT limit is read again row by row, and a read that dies between two commits resumes
from its cursor with every row delivered once."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from devtools.bi_standin import BiStandIn
from devtools.storedb import insert_nfce, nfce_row

from flageemonitor.proxy.collectors import engine
from flageemonitor.proxy.collectors.coupons import COUPONS
from flageemonitor.proxy.collectors.cursor import Cursor
from flageemonitor.proxy.collectors.engine import Options, fast_conversions, row_pages
from flageemonitor.proxy.collectors.stores import mysql_connect
from flageemonitor.proxy.spool import Spool, SpoolError
from tests.collectors.conftest import by_store, config, realistic_nfce, run
from tests.fixtures.mariadb import StorePair

pytestmark = [pytest.mark.slow, pytest.mark.collectors]


def _crowded_nfce(stores: StorePair, now: datetime) -> int:
    """Rows whose positions crowd: runs of 2-4 rows in one second, one second holding 23 rows
    (more than a page), exact duplicates, and the realistic odd rows (separators in a value
    included). Returns how many distinct rows the BI must receive."""
    expected = realistic_nfce(stores.first, 1, now)
    rng = random.Random(4)
    rows: list[tuple[Any, ...]] = []
    when = now - timedelta(hours=2)
    cupom = 20_000
    for n in range(40):
        for _ in range(2 + n % 3):
            rows.append(nfce_row(1, when, 205, cupom, rng))
            cupom += 1
        when += timedelta(seconds=1 + n % 2)
    crowd = now - timedelta(hours=1)
    rows += [nfce_row(1, crowd, 206, cupom + k, rng) for k in range(23)]
    rows += [rows[3], rows[-1]]  # exact duplicates: each counts once
    insert_nfce(stores.first, rows)
    return expected + len(rows) - 2


def _pages(stores: StorePair, in_database: bool) -> list[tuple[list[str], list[str]]]:
    cfg = config(stores, None, PARAM_COLLECTOR_START_DAYS=0)
    opened: list[Any] = []

    def connect() -> Any:
        opened.append(mysql_connect(stores.first.address, cfg, "retag", timeout=10, conv=fast_conversions()))
        return opened[-1]

    pages = list(row_pages(COUPONS, connect, Options(rede="MLAR"), Cursor(None), in_database))
    assert opened and all(not conn.open for conn in opened), "every connection opened is closed"
    return pages


@pytest.mark.parametrize(("group_s", "concat_max"), [(2, 8 * 1024 * 1024), (2, 1000), (600, 100)])
def test_pages_give_every_row_once_in_order_whatever_the_limits(
    group_s: int, concat_max: int, stores: StorePair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small groups and pages (a second holds more rows than a page), a GROUP_CONCAT limit that
    fits two rows at most, and one that fits no row at all: the pages hold exactly the rows one
    plain read gives, in position order, and no position is split between two pages."""
    _crowded_nfce(stores, datetime.now().replace(microsecond=0))
    plain = _pages(stores, in_database=False)  # one statement, rendered in Python
    monkeypatch.setattr(engine, "PAGE_ROWS", 7)
    monkeypatch.setattr(engine, "GROUP_S", group_s)
    monkeypatch.setattr(engine, "GROUP_CONCAT_MAX_LEN", concat_max)
    pages = _pages(stores, in_database=True)
    got = [(p, t) for positions, texts in pages for p, t in zip(positions, texts, strict=True)]
    want = [(p, t) for positions, texts in plain for p, t in zip(positions, texts, strict=True)]
    assert [p for p, _ in got] == sorted(p for p, _ in got), "pages must come in position order"
    assert Counter(p for p, _ in got) == Counter(p for p, _ in want)
    def canonical(rows: list[tuple[str, str]]) -> Counter[str]:
        return Counter(json.dumps(json.loads(t), sort_keys=True) for _, t in rows)

    assert canonical(got) == canonical(want)
    assert any("\\u001f" in t.lower() for _, t in got), "the database escapes the separator inside a value"
    ends = [positions[-1] for positions, _ in pages[:-1]]
    starts = [positions[0] for positions, _ in pages[1:]]
    assert len(pages) > 3 and all(end < start for end, start in zip(ends, starts, strict=True)), \
        "rows sharing a position stay in one page"


def test_a_read_that_dies_between_commits_resumes_and_sends_each_row_once(
    stores: StorePair, bi: BiStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool refuses the third commit (a full disk: a fault produced here, not for real) while
    a page is half packed. The run reports the error and keeps what it spooled; the next run
    starts from the cursor, and the BI gets every distinct row exactly once."""
    expected = _crowded_nfce(stores, datetime.now().replace(microsecond=0))
    monkeypatch.setattr(engine, "PAGE_ROWS", 11)
    monkeypatch.setattr(engine, "GROUP_S", 2)
    monkeypatch.setattr(engine, "CHUNK_BATCHES", 2)
    cfg = config(stores, bi, PARAM_IP_CONCENTRADORES=[stores.first.address], PARAM_BI_BATCH_SIZE=5)
    real_put = Spool.put
    calls = {"n": 0}

    def failing_put(self: Spool, queue: str, items: Any, *, db: Any = None) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SpoolError("spool: disk full (fault injected by the test)")
        return real_put(self, queue, items, db=db)

    monkeypatch.setattr(Spool, "put", failing_put)
    first = run("cupons", cfg, tmp_path)
    store = by_store(first)[stores.first.address]
    assert first.failed and "disk full" in store["error"] and store["new"] == 2 * 2 * 5, store
    assert store["cursor"], "the cursor advanced with the two commits that went through"
    monkeypatch.setattr(Spool, "put", real_put)
    second = run("cupons", cfg, tmp_path)
    assert not second.failed, by_store(second)
    rows = bi.rows("/cupons/batch")
    keys = Counter((r["Chave"], r["Status"], r["vICMS"], r["dEmi"]) for r in rows)
    assert len(keys) == expected and set(keys.values()) == {1}, keys.most_common(3)
    bi.reset()
    assert not run("cupons", cfg, tmp_path).failed and bi.batches() == []
