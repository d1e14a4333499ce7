"""Shared pieces of the collector suites: configs pointing at the real store databases and the BI
stand-in, realistic rows, and a run helper."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from devtools.bi_standin import BiStandIn
from devtools.mariadb import MariaDb
from devtools.storedb import access_key, insert_cupom, insert_nfce, nfce_row

from flageemonitor.core.config_model import BotConfig, validate_config
from flageemonitor.core.results import RunReport
from flageemonitor.proxy.pipeline import RunRequest, execute
from tests.fixtures.bi import BI_TOKEN
from tests.fixtures.mariadb import StorePair

REDE = "MLAR"

# odd strings a store database really holds: quotes, backslashes, accents, newlines, emoji, SQL
ODD = ["Cancelado \"pelo\" operador", "O'Brien\\loja", "ação\nnova linha", "🧾 emoji", "'; DROP TABLE nfce; --", "",
       "unit\x1fand record\x1eseparators"]


def config_data(pair: StorePair, bi: BiStandIn | None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "PARAM_REDE": REDE,
        "PARAM_IP_CONCENTRADORES": [pair.first.address, pair.second.address],
        "DB_PORT": pair.port, "DB_USER": pair.user, "DB_PASS": pair.password, "DB_TIMEOUT": 5,
        "PARAM_TOKEN_BI": BI_TOKEN, "PARAM_BI_TIMEOUT": 3, "PARAM_COLLECTOR_DRAIN_S": 30,
    }
    if bi is not None:
        data.update(PARAM_BI_SERVER=bi.server, PARAM_BI_CERTI_PATH=str(bi.ca.ca_file))
    data.update(extra)
    return data


def config(pair: StorePair, bi: BiStandIn | None, **extra: Any) -> BotConfig:
    return validate_config(config_data(pair, bi, **extra))


def run(action: str, cfg: BotConfig, state: Path, *, dry_run: bool = False, **args: str) -> RunReport:
    return asyncio.run(execute(RunRequest(action=action, args=dict(args), dry_run=dry_run), cfg, state_dir=state))


def local(report: RunReport) -> dict[str, Any]:
    assert report.local is not None
    return report.local


def by_store(report: RunReport) -> dict[str, dict[str, Any]]:
    return {c["concentrator"]: c for c in local(report)["concentrators"]}


def nfce_keys(rows: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """What the BI got, counted per (store, access key, content)."""
    return Counter((r["nroloja"], r["Chave"], r["dEmi"], r["Status"], r["vICMS"]) for r in rows)


def realistic_nfce(server: MariaDb, loja: int, now: datetime, *, count: int = 30, seed: int = 1) -> int:
    """`count` ordinary coupons in the last hours, plus the rows stores really have: NULL values,
    odd strings, an exact duplicate row, a second row under the same key with other content, rows
    without an access key (never sent), and a NULL emission time (never sent). Returns how many
    distinct rows the BI must receive."""
    rng = random.Random(seed)
    rows = [nfce_row(loja, now - timedelta(minutes=5 * n + 1), 201 + n % 3, 1000 + n, rng) for n in range(count)]
    for n, text in enumerate(ODD):
        row = list(nfce_row(loja, now - timedelta(minutes=2, seconds=n), 209, 5000 + n, rng))
        row[15] = text  # Status
        rows.append(tuple(row))
    nulls = list(nfce_row(loja, now - timedelta(minutes=3), 0, 6000, rng))
    nulls[2] = nulls[4] = nulls[14] = nulls[15] = None  # Pdv, estornado, LV, Status
    nulls[6:14] = [None] * 8  # every tax value
    rows.append(tuple(nulls))
    rows.append(rows[0])  # an exact duplicate: the same row twice
    changed = list(rows[1])
    changed[15] = "999"  # same access key, other content: a second distinct row
    rows.append(tuple(changed))
    no_key = list(nfce_row(loja, now - timedelta(minutes=4), 201, 7000, rng))
    no_key[5] = ""
    null_key = list(no_key)
    null_key[5] = None
    no_time = list(nfce_row(loja, now, 201, 7001, rng))
    no_time[1] = None
    no_time[5] = access_key(loja, 201, 7001)
    rows += [tuple(no_key), tuple(null_key), tuple(no_time)]
    insert_nfce(server, rows)
    return count + len(ODD) + 1 + 1  # ordinary + odd + nulls + changed (the duplicate counts once)


def cupom_rows(loja: int, now: datetime, count: int = 12) -> list[tuple[Any, ...]]:
    out = []
    for n in range(count):
        when = now - timedelta(minutes=7 * n + 1)
        out.append((when.date(), loja, 300 + n, 201 + n % 2, when, n + 1, "N" if n % 5 else "S", n % 3,
                    (1, 2, 4, 8, 16)[n % 5], 10.5 * n, "S", "S" if n % 4 else None))
    return out


@pytest.fixture
def stores(store_pair: StorePair) -> StorePair:
    store_pair.truncate()
    return store_pair


def insert_cupons(server: MariaDb, rows: list[tuple[Any, ...]]) -> None:
    insert_cupom(server, rows)
