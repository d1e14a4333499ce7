"""`refresh_endpoint_printer` (`pdv_atualiza_impressora`): each checkout's printer, from the store
database (`pf_hw` ⨝ `impnaofiscal` in `DB_NAME`), into the Zabbix macros `{$PDV_IMPRESSORA_PATH}`
(device) and `{$PDV_IMPRESSORA_LIB}` (driver library) of `<REDE>-LOJA%03d-PDV%03d`.

- Loja and PDV of a record: with `PDV_PARSING_RULE = {regex, source_field}` the regex (named groups
  `loja_num`, `pdv_num`, case-insensitive) is applied to that field (`codigo`, `descricao`,
  `disp_imp`, `nomelib`); otherwise the loja is the concentrator's (`CONCENTRADORES[].loja`) and
  the PDV is `codigo` without the loja number in front. A record without a loja is skipped, and
  the report says why. `--loja` keeps one store.
- Only hosts of the network's host group whose macros differ are changed, one macro at a time
  (`usermacro.create` / `usermacro.update`): every other macro of the host, secret ones included,
  stays as it is. A host missing from Zabbix is reported, never created.
- `--dry-run` reports the macro diff and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import ActionFailed, FlageeError
from flageemonitor.core.hosts import technical_name
from flageemonitor.proxy.actions.base import ActionOutcome
from flageemonitor.proxy.collectors.stores import (
    Concentrator,
    concentrators,
    mysql_connect,
    mysql_error,
    nothing_configured,
)
from flageemonitor.proxy.inventory.zabbix import find_group_id, host_group_name
from flageemonitor.proxy.zabbix.client import ZabbixClient, connect

PATH_MACRO = "{$PDV_IMPRESSORA_PATH}"
LIB_MACRO = "{$PDV_IMPRESSORA_LIB}"
FIELDS = ("codigo", "descricao", "disp_imp", "nomelib")
QUERY = ("SELECT h.codigo, h.descricao, i.disp_imp, i.nomelib FROM pf_hw h "
         "JOIN impnaofiscal i ON h.codimpnfiscal = i.codigo ORDER BY h.codigo")


@dataclass(frozen=True)
class Printer:
    host: str
    path: str | None
    lib: str | None
    source: str


def _rule(config: BotConfig) -> tuple[re.Pattern[str], str] | None:
    rule = config.PDV_PARSING_RULE
    if rule is None:
        return None
    if rule.source_field not in FIELDS:
        raise ActionFailed(f"PDV_PARSING_RULE.source_field {rule.source_field!r}: expected one of {', '.join(FIELDS)}")
    try:
        pattern = re.compile(rule.regex, re.IGNORECASE)
    except re.error as exc:
        raise ActionFailed(f"PDV_PARSING_RULE.regex is not a valid regular expression: {exc}") from None
    if not {"loja_num", "pdv_num"} <= set(pattern.groupindex):
        raise ActionFailed("PDV_PARSING_RULE.regex needs the named groups loja_num and pdv_num")
    return pattern, rule.source_field


def _loja_pdv(record: dict[str, Any], conc: Concentrator,
              rule: tuple[re.Pattern[str], str] | None) -> tuple[int, str] | str:
    """(loja, pdv) of a record, or why it was skipped."""
    codigo = str(record["codigo"] or "").strip()
    if rule is not None:
        pattern, field = rule
        match = pattern.search(str(record.get(field) or ""))
        if match is None:
            return f"{field} {record.get(field)!r} does not match PDV_PARSING_RULE"
        loja_text, pdv = match.group("loja_num"), match.group("pdv_num")
    else:
        if conc.loja is None:
            return "no loja: set CONCENTRADORES[].loja or PDV_PARSING_RULE"
        loja_text = str(conc.loja).strip().upper().removeprefix("LOJA")
        number = str(int(loja_text)) if loja_text.isdigit() else loja_text
        pdv = codigo[len(number):] if codigo.startswith(number) and len(codigo) > len(number) else codigo
    if not loja_text or not loja_text.strip().isdigit() or not pdv:
        return f"loja {loja_text!r} / pdv {pdv!r} unusable"
    return int(loja_text), pdv.strip()


def read_printers(config: BotConfig, conc: Concentrator, loja: int | None,
                  rule: tuple[re.Pattern[str], str] | None) -> tuple[list[Printer], list[str]]:
    import pymysql

    conn = mysql_connect(conc.address, config, config.DB_NAME, timeout=config.DB_TIMEOUT)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(QUERY)
            rows = list(cur.fetchall())
    except pymysql.MySQLError as exc:
        raise mysql_error(conc.address, config, config.DB_NAME, exc) from None
    printers, skipped = [], []
    for row in rows:
        record = dict(zip(FIELDS, row, strict=True))
        where = f"{conc.address} pf_hw {record['codigo']!r}"
        parsed = _loja_pdv(record, conc, rule)
        if isinstance(parsed, str):
            skipped.append(f"{where}: {parsed}")
            continue
        if loja is not None and parsed[0] != loja:
            continue
        printers.append(Printer(technical_name(config.PARAM_REDE, *parsed), record["disp_imp"], record["nomelib"],
                                where))
    return printers, skipped


def _changes(printers: list[Printer], hosts: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str],
                                                                                  int]:
    changes: list[dict[str, Any]] = []
    missing: list[str] = []
    unchanged = 0
    done: set[str] = set()
    for p in printers:
        host = hosts.get(p.host.upper())
        if host is None:
            missing.append(p.host)
            continue
        if host["host"] in done:
            continue  # a second record for the same checkout: the first one wins
        done.add(host["host"])
        macros = {m["macro"]: m for m in host.get("macros", [])}
        diff = []
        for macro, value in ((PATH_MACRO, p.path), (LIB_MACRO, p.lib)):
            if value is None:
                continue
            current = macros.get(macro)
            if current is not None and current.get("value") == value:
                continue
            diff.append({"host": host["host"], "hostid": host["hostid"], "macro": macro,
                         "old": current.get("value") if current else None, "new": str(value),
                         "hostmacroid": current.get("hostmacroid") if current else None, "applied": False})
        if diff:
            changes += diff
        else:
            unchanged += 1
    return changes, sorted(set(missing)), unchanged


def _apply(client: ZabbixClient, change: dict[str, Any]) -> None:
    if change["hostmacroid"]:
        client.call("usermacro.update", {"hostmacroid": change["hostmacroid"], "value": change["new"]})
    else:
        client.call("usermacro.create", {"hostid": change["hostid"], "macro": change["macro"], "value": change["new"]})
    change["applied"] = True


def refresh_printers(config: BotConfig, loja: int | None, dry_run: bool) -> ActionOutcome:
    stores = concentrators(config)
    if not stores:
        return nothing_configured()
    rule = _rule(config)
    printers: list[Printer] = []
    skipped: list[str] = []
    errors: list[str] = []
    for conc in stores:
        try:
            found, why = read_printers(config, conc, loja, rule)
        except FlageeError as exc:
            errors.append(str(exc))
            continue
        printers += found
        skipped += why
    with connect(config) as client:
        group = host_group_name(config)
        groupid = find_group_id(client, group)
        if groupid is None:
            raise ActionFailed(f"Zabbix host group {group!r} not found")
        records = client.call("host.get", {"output": ["hostid", "host"], "groupids": [groupid],
                                           "selectMacros": ["hostmacroid", "macro", "value", "type"]})
        hosts = {str(h["host"]).upper(): h for h in records}
        changes, missing, unchanged = _changes(printers, hosts)
        if not dry_run:
            for change in changes:
                try:
                    _apply(client, change)
                except FlageeError as exc:
                    errors.append(f"{change['host']} {change['macro']}: {exc}")
    verb = "would change" if dry_run else "changed"
    lines = [f"{c['host']}: {c['macro']} {c['old']!r} -> {c['new']!r}"
             + ("" if c["applied"] or dry_run else " (NOT applied)") for c in changes]
    lines += [f"{name}: not in Zabbix group {group!r}" for name in missing] + [f"skipped {s}" for s in skipped]
    lines += [f"ERROR {e}" for e in errors]
    changed_hosts = len({c["host"] for c in changes})
    detail = (f"{len(printers)} printer record(s): {changed_hosts} host(s) {verb}, {unchanged} unchanged, "
              f"{len(missing)} not in Zabbix, {len(skipped)} skipped")
    if errors:
        detail += f"; {len(errors)} error(s): " + "; ".join(errors)
    public = [{k: v for k, v in c.items() if k not in ("hostid", "hostmacroid")} for c in changes]
    return ActionOutcome(ok=not errors, detail=detail, data={
        "dry_run": dry_run, "changes": public, "unchanged": unchanged, "missing": missing, "skipped": skipped,
        "errors": errors, "lines": lines})
