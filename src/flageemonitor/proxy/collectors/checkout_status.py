"""`collect_checkout_status` (`status_caixa`): the operator logged in at each checkout, from the
NEO PostgreSQL database of each concentrator → the `pdv.neo.operador_id` trapper item of
`<REDE>-LOJA%03d-PDV%03d`.

The query (a named, server-side cursor; every value bound): the latest row (highest `coo`) of
`pdvvalor` with `tipo = 5` per checkout, joined with `pdv` and `loja` for their codes. Values are
point-in-time states, sent straight to Zabbix and never spooled: a stale operator id delivered
later would be wrong. Per concentrator the report lists rows read, values sent and refused.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zabbix_utils.types import ItemValue

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import ActionFailed, FlageeError
from flageemonitor.core.hosts import technical_name
from flageemonitor.proxy.actions.base import ActionOutcome
from flageemonitor.proxy.collectors import traps
from flageemonitor.proxy.collectors.engine import PARALLEL_STORES
from flageemonitor.proxy.collectors.stores import (
    Concentrator,
    PgSettings,
    concentrators,
    nothing_configured,
    pg_settings,
    pg_stream,
)
from flageemonitor.proxy.zabbix.reporter import sender_target

log = logging.getLogger("flageemonitor.collectors.checkout_status")

OPERATOR_TYPE = 5
QUERY = (
    "SELECT DISTINCT ON (p.id) l.codigo, p.codigo, v.operadorid "
    "FROM pdvvalor v JOIN pdv p ON p.id = v.pdvid JOIN loja l ON l.id = p.lojaid "
    "WHERE v.tipo = %s{loja} ORDER BY p.id, v.coo DESC"
)


def _query(loja: int | None) -> tuple[str, tuple[Any, ...]]:
    if loja is None:
        return QUERY.format(loja=""), (OPERATOR_TYPE,)
    return QUERY.format(loja=" AND l.codigo = %s"), (OPERATOR_TYPE, loja)


def _values(rede: str, rows: list[tuple[Any, ...]]) -> tuple[list[ItemValue], list[str]]:
    clock = int(time.time())
    values, skipped = [], []
    for loja, pdv, operator in rows:
        if loja is None or pdv is None or operator is None or not str(loja).strip().isdigit():
            skipped.append(f"{loja}/{pdv}")
            continue
        host = technical_name(rede, int(str(loja).strip()), str(pdv).strip())
        values.append(ItemValue(host, traps.CHECKOUT_OPERATOR, str(operator).strip(), clock))
    return values, skipped


def _one(config: BotConfig, settings: PgSettings, conc: Concentrator, loja: int | None,
         timeout: float, dry_run: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"concentrator": conc.address, "read": 0, "sent": 0, "refused": 0, "error": None}
    try:
        sql, params = _query(loja)
        rows = list(pg_stream(conc.address, settings, sql, params, timeout=timeout))
    except FlageeError as exc:
        out["error"] = str(exc)
        return out
    out["read"] = len(rows)
    values, skipped = _values(config.PARAM_REDE, rows)
    if skipped:
        out["skipped"] = skipped
    if dry_run:
        out["would_send"] = {v.host: v.value for v in values}
        return out
    result = traps.send(config, values)
    out["sent"], out["refused"] = result.processed, result.failed
    if result.error:
        out["error"] = result.error
    return out


def collect_checkout_status(config: BotConfig, loja: int | None, dry_run: bool) -> ActionOutcome:
    stores = concentrators(config)
    if not stores:
        return nothing_configured()
    settings = pg_settings(config)
    if not dry_run and sender_target(config) is None:
        raise ActionFailed("no Zabbix sender target: set PARAM_ZABBIX_SENDER_SERVER (and _PORT)")
    with ThreadPoolExecutor(max_workers=min(PARALLEL_STORES, len(stores))) as pool:
        reports = list(pool.map(lambda s: _one(config, settings, s, loja, config.DB_TIMEOUT, dry_run), stores))
    failed = [r for r in reports if r["error"]]
    lines = [f"{r['concentrator']}: read {r['read']}, sent {r['sent']}, refused {r['refused']}"
             + (f"; ERROR {r['error']}" if r["error"] else "") for r in reports]
    for line in lines:
        log.info("collect_checkout_status %s", line)
    detail = (f"{len(stores)} store database(s): {sum(r['read'] for r in reports)} checkouts read, "
              f"{sum(r['sent'] for r in reports)} values sent" + (" (dry run: none)" if dry_run else ""))
    if failed:
        detail += f"; {len(failed)} failed: " + "; ".join(f"{r['concentrator']}: {r['error']}" for r in failed)
    return ActionOutcome(ok=not failed, detail=detail, data={"concentrators": reports, "lines": lines,
                                                             "dry_run": dry_run})
