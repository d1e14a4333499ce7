"""`register_endpoints` (aliases `pdv_auto_register`, `register_hosts`): reconcile the store's
endpoint list with the network's Zabbix hosts.

Options (`--arg KEY=VALUE`):
  endpoints=FILE        the endpoint list, YAML or CSV (see `read_endpoints_file`); without it the
                        list is read from the store databases (`read_store_database`)
  loja=LOJA001          only this store's endpoints
  autoregister=1        create missing hosts (and the network's host group when absent)
  fix_divergent=1       rename hosts whose IP is known under another name, fix divergent IPs

Report (`ActionOutcome.data`): `missing` (not in Zabbix), `renamed` (its IP is known under another
name), `ip_divergent` (same name, other IP), `zabbix_only` (endpoint hosts of the group absent
from the list), `conflicts` (not fixable without a duplicate), `changes` (each with `applied`).
Unlike the original, a host is never created when its name exists anywhere in Zabbix or its IP
belongs to another host, the proxy is assigned in the form the server version wants (and read
back, since Zabbix 7 silently ignores the 6.0 field), and dry-run changes nothing.

Reconciliation is scoped to the listed endpoints' stores when `loja` is given: hosts of other
stores are then not reported as zabbix-only.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.env import truthy
from flageemonitor.core.errors import ActionFailed, InventoryError
from flageemonitor.core.hosts import ENDPOINT_TYPES, Host, parse_host_name, technical_name
from flageemonitor.proxy.actions import register
from flageemonitor.proxy.actions.base import ActionContext, ActionOutcome, LocalAction
from flageemonitor.proxy.collectors.stores import concentrators, mysql_connect, mysql_error, parse_loja
from flageemonitor.proxy.inventory.zabbix import endpoint_type_of, find_group_id, host_group_name
from flageemonitor.proxy.zabbix.client import ZabbixClient, connect

_FIELD_ALIASES = {
    "loja": ("loja", "nroloja", "store"),
    "pdv": ("pdv", "codigo", "code"),
    "ip": ("ip", "address"),
    "type": ("type", "tipo"),
    "sat_fabricante": ("sat_fabricante",),
}


@dataclass(frozen=True)
class Endpoint:
    loja: int
    code: str
    ip: str
    endpoint_type: str = "PDV"
    sat_fabricante: str | None = None

    def name(self, rede: str) -> str:
        return technical_name(rede, self.loja, self.code, self.endpoint_type)

    def visible_name(self, rede: str) -> str:
        tech = self.name(rede)
        return f"{rede} (LOJA{self.loja:03d}) {tech.rsplit('-', 1)[1]}"


@dataclass(frozen=True)
class ZabbixHost:
    hostid: str
    host: str
    ip: str | None
    interfaceid: str | None


@dataclass
class Reconciliation:
    ok: list[str] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    renamed: list[dict[str, str]] = field(default_factory=list)
    ip_divergent: list[dict[str, str]] = field(default_factory=list)
    zabbix_only: list[str] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- endpoint list
def _pick(row: Mapping[str, Any], key: str) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for alias in _FIELD_ALIASES[key]:
        value = lowered.get(alias)
        if value not in (None, ""):
            return value
    return None


def _endpoint(row: Mapping[str, Any], where: str) -> Endpoint | None:
    loja, code, ip = _pick(row, "loja"), _pick(row, "pdv"), _pick(row, "ip")
    if ip is None or str(ip).strip() in ("", "0.0.0.0"):
        return None  # the store database keeps rows without an address: nothing to reconcile
    if loja is None or code is None:
        raise InventoryError(f"{where}: 'loja' and 'pdv' are required")
    try:
        loja_n = int(str(loja).strip().upper().removeprefix("LOJA"))
    except ValueError:
        raise InventoryError(f"{where}: loja {loja!r} is not a number") from None
    etype = str(_pick(row, "type") or "PDV").strip().upper()
    etype = next((t for t in ENDPOINT_TYPES if etype.startswith(t)), "")
    if not etype:
        raise InventoryError(f"{where}: type must be one of {', '.join(ENDPOINT_TYPES)}")
    code_text = str(code).strip().upper()
    code_text = code_text.removeprefix(etype)
    if not code_text.isalnum():
        raise InventoryError(f"{where}: pdv code {code!r} is not alphanumeric")
    try:
        address = str(ipaddress.ip_address(str(ip).strip()))
    except ValueError:
        raise InventoryError(f"{where}: {ip!r} is not an IP address") from None
    sat = _pick(row, "sat_fabricante")
    return Endpoint(loja_n, code_text, address, etype, str(sat).strip() if sat is not None else None)


def read_endpoints_file(path: Path) -> list[Endpoint]:
    """The endpoint list from YAML (`endpoints:` list of mappings, or a bare list) or CSV (header
    `loja,pdv,ip[,type][,sat_fabricante]`; `nroloja`/`codigo` accepted as in `pf_pdv`)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InventoryError(f"endpoint list {path}: {exc.strerror or exc}") from None
    rows: list[Mapping[str, Any]]
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        first_line = 2  # after the header
    else:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InventoryError(f"endpoint list {path} is not valid YAML: {exc}") from None
        if isinstance(doc, dict):
            doc = doc.get("endpoints")
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise InventoryError(f"endpoint list {path}: expected a list of mappings (or 'endpoints:' with one)")
        rows = doc
        first_line = 1
    out: list[Endpoint] = []
    for n, row in enumerate(rows):
        where = f"endpoint list {path}: {'line' if first_line == 2 else 'entry'} {n + first_line}"
        endpoint = _endpoint(row, where)
        if endpoint is not None:
            out.append(endpoint)
    return out


MIN_PDV_CODE = 200  # pf_pdv rows below this code are not checkouts
STORE_QUERY = "SELECT sat_fabricante, nroloja, codigo, ip FROM pf_pdv WHERE codigo >= %s"


def read_store_database(config: BotConfig, loja: int | None = None, *, timeout: float = 20) -> list[Endpoint]:
    """The endpoint list from the `pf_pdv` table of every concentrator (MySQL/MariaDB:
    `DB_USER`, `DB_PASS`, `DB_NAME`, `DB_PORT`). One unreadable concentrator fails the whole read:
    reconciling without its rows would report all its endpoints as zabbix-only."""
    import pymysql

    sources = concentrators(config)
    if not sources:
        raise InventoryError(
            "no endpoint list: pass --arg endpoints=FILE (YAML or CSV) or configure the store databases "
            "(CONCENTRADORES or PARAM_IP_CONCENTRADORES with DB_USER/DB_PASS)"
        )
    out: list[Endpoint] = []
    for source in sources:
        query, params = STORE_QUERY, [MIN_PDV_CODE]
        if loja is not None:
            query += " AND nroloja = %s"
            params.append(loja)
        conn = mysql_connect(source.address, config, config.DB_NAME, timeout=timeout,
                             cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, params)
                rows = list(cur.fetchall())
        except pymysql.MySQLError as exc:
            raise mysql_error(source.address, config, config.DB_NAME, exc) from None
        for n, row in enumerate(rows):
            endpoint = _endpoint(row, f"store database {source.address}: pf_pdv row {n + 1}")
            if endpoint is not None:
                out.append(endpoint)
    return out


# --------------------------------------------------------------------------- reconciliation
def reconcile(rede: str, endpoints: Iterable[Endpoint], hosts: Iterable[ZabbixHost],
              loja: int | None = None) -> Reconciliation:
    """Compare the list with the group's hosts (pure: no API calls); `loja` limits zabbix-only."""
    result = Reconciliation()
    endpoints = list(endpoints)
    by_name = {h.host.upper(): h for h in hosts}
    by_ip: dict[str, ZabbixHost] = {}
    for h in by_name.values():
        if h.ip:
            by_ip.setdefault(h.ip, h)
    expected = {e.name(rede).upper() for e in endpoints}
    claimed: set[str] = set()
    for e in endpoints:
        name = e.name(rede)
        have = by_name.get(name.upper())
        if have is not None:
            claimed.add(have.host.upper())
            if have.ip == e.ip:
                result.ok.append(name)
            else:
                result.ip_divergent.append({"name": name, "ip": e.ip, "zabbix_ip": have.ip or ""})
            continue
        holder = by_ip.get(e.ip)
        if holder is None:
            result.missing.append({"name": name, "ip": e.ip})
        elif holder.host.upper() in expected:
            # the IP belongs to a host the list expects under its own name: renaming would
            # break that one and creating would duplicate the address
            result.conflicts.append({"name": name, "ip": e.ip, "reason": f"IP in use by {holder.host}"})
        else:
            claimed.add(holder.host.upper())
            result.renamed.append({"name": name, "ip": e.ip, "current": holder.host})
    for h in by_name.values():
        if loja is not None and parse_host_name(h.host).loja != loja:
            continue
        if h.host.upper() not in claimed and endpoint_type_of(h.host, {}, None) is not None:
            result.zabbix_only.append(h.host)
    result.zabbix_only.sort()
    return result


def _group_hosts(client: ZabbixClient, groupid: str) -> list[ZabbixHost]:
    records = client.call("host.get", {
        "output": ["hostid", "host"], "groupids": [groupid], "selectInterfaces": client.compat.interfaces_output(),
    })
    out = []
    for r in records:
        itf = client.compat.main_agent_interface(r.get("interfaces", []))
        out.append(ZabbixHost(str(r["hostid"]), str(r["host"]), str(itf["ip"]) if itf else None,
                              str(itf["interfaceid"]) if itf else None))
    return out


# --------------------------------------------------------------------------- changes
class _Applier:
    def __init__(self, client: ZabbixClient, config: BotConfig, dry_run: bool) -> None:
        self.client, self.config, self.dry_run = client, config, dry_run
        self.changes: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def _do(self, change: dict[str, Any], method: str, params: dict[str, Any]) -> Any:
        change["applied"] = False
        self.changes.append(change)
        if self.dry_run:
            return None
        result = self.client.call(method, params)
        change["applied"] = True
        return result

    def create_group(self, name: str) -> str | None:
        res = self._do({"op": "create_group", "group": name}, "hostgroup.create", {"name": name})
        return str(res["groupids"][0]) if res else None

    def create_host(self, e: Endpoint, groupid: str | None) -> None:
        rede = self.config.PARAM_REDE
        name = e.name(rede)
        if self.client.call("host.get", {"output": ["hostid"], "filter": {"host": [name]}}):
            self.errors.append(f"{name}: exists outside the group {host_group_name(self.config)!r}; not created")
            return
        params: dict[str, Any] = {
            "host": name,
            "name": e.visible_name(rede),
            "groups": [{"groupid": groupid or "0"}],
            "interfaces": [{"type": 1, "main": 1, "useip": 1, "ip": e.ip, "dns": "",
                            "port": str(self.config.PARAM_ZABBIX_PORT)}],
            "templates": [{"templateid": str(t)} for t in self.config.PARAM_TEMPLATES],
            "tags": [{"tag": "PDV_TIPO", "value": "PDV_PADRAO" if e.endpoint_type == "PDV" else e.endpoint_type}],
            "inventory_mode": 0,
        }
        if e.sat_fabricante:
            params["macros"] = [{"macro": "{$SAT_FABRICANTE}", "value": e.sat_fabricante}]
        if self.config.PARAM_REGISTER_INVENTORY_NOTES and self.config.PARAM_SSH_PASSWORD:
            params["inventory"] = {"notes": f"{self.config.PARAM_SSH_USER},{self.config.PARAM_SSH_PASSWORD}"}
        proxyid = self.config.PARAM_ZABBIX_PROXYID
        if proxyid not in (None, ""):
            params.update(self.client.compat.host_proxy_params(proxyid))
        change = {"op": "create", "host": name, "ip": e.ip, "proxyid": str(proxyid) if proxyid else None}
        res = self._do(change, "host.create", params)
        if res and proxyid not in (None, ""):
            self._verify_proxy(name, str(res["hostids"][0]), str(proxyid))

    def _verify_proxy(self, name: str, hostid: str, proxyid: str) -> None:
        """Read the host back: Zabbix 7 ignores a proxy field it does not know instead of failing."""
        back = self.client.call("host.get", {"output": ["hostid", *self.client.compat.host_proxy_output()],
                                             "hostids": [hostid]})
        got = self.client.compat.proxy_of(back[0]) if back else None
        if got != proxyid:
            self.errors.append(f"{name}: created, but monitored by proxy {got or 'none'} instead of {proxyid}")

    def rename(self, item: Mapping[str, str], hostid: str, visible: str) -> None:
        self._do({"op": "rename", "host": item["current"], "to": item["name"]}, "host.update",
                 {"hostid": hostid, "host": item["name"], "name": visible})

    def set_ip(self, item: Mapping[str, str], interfaceid: str) -> None:
        self._do({"op": "set_ip", "host": item["name"], "from": item["zabbix_ip"], "to": item["ip"]},
                 "hostinterface.update", {"interfaceid": interfaceid, "ip": item["ip"]})


def _flag(args: Mapping[str, Any], *names: str) -> bool:
    return any(truthy(str(args[n])) for n in names if n in args and args[n] is not None)


def run_reconciliation(config: BotConfig, endpoints: list[Endpoint], *, autoregister: bool,
                       fix_divergent: bool, dry_run: bool, loja: int | None = None) -> ActionOutcome:
    rede = config.PARAM_REDE
    names = [e.name(rede).upper() for e in endpoints]
    dup_names = sorted({n for n in names if names.count(n) > 1})
    ips = [e.ip for e in endpoints]
    dup_ips = sorted({i for i in ips if ips.count(i) > 1})
    if dup_names or dup_ips:
        raise ActionFailed(f"the endpoint list repeats names {dup_names} / IPs {dup_ips}; nothing changed")
    by_name = {e.name(rede): e for e in endpoints}
    with connect(config) as client:
        group = host_group_name(config)
        groupid = find_group_id(client, group)
        applier = _Applier(client, config, dry_run)
        if groupid is None:
            if not autoregister:
                raise InventoryError(f"Zabbix host group {group!r} not found (autoregister=1 creates it)")
            groupid = applier.create_group(group)
        hosts = _group_hosts(client, groupid) if groupid else []
        rec = reconcile(rede, endpoints, hosts, loja)
        ids = {h.host.upper(): h for h in hosts}
        if autoregister:
            for item in rec.missing:
                applier.create_host(by_name[item["name"]], groupid)
        if fix_divergent:
            for item in rec.renamed:
                applier.rename(item, ids[item["current"].upper()].hostid, by_name[item["name"]].visible_name(rede))
            for item in rec.ip_divergent:
                interfaceid = ids[item["name"].upper()].interfaceid
                if interfaceid is None:
                    applier.errors.append(f"{item['name']}: no main agent interface to fix")
                else:
                    applier.set_ip(item, interfaceid)
    data: dict[str, Any] = {**asdict(rec), "endpoints": len(endpoints), "dry_run": dry_run,
                            "changes": applier.changes, "errors": applier.errors}
    verb = "planned" if dry_run else "applied"
    detail = (f"{len(endpoints)} endpoints: {len(rec.ok)} ok, {len(rec.missing)} missing, {len(rec.renamed)} "
              f"renamed, {len(rec.ip_divergent)} ip-divergent, {len(rec.zabbix_only)} zabbix-only, "
              f"{len(rec.conflicts)} conflicts; {len(applier.changes)} changes {verb}")
    if applier.errors:
        detail += f"; {len(applier.errors)} errors"
    return ActionOutcome(ok=not applier.errors, detail=detail, data=data)


@register
class RegisterEndpoints(LocalAction):
    name = "register_endpoints"
    version = "1.0.0"
    wants_hosts: ClassVar[bool] = False

    async def run_local(self, ctx: ActionContext, hosts: list[Host] | None) -> ActionOutcome:
        source = ctx.args.get("endpoints")
        loja = parse_loja(ctx.args.get("loja"))
        if source:
            endpoints = [e for e in read_endpoints_file(Path(str(source))) if loja is None or e.loja == loja]
        else:
            endpoints = await asyncio.to_thread(read_store_database, ctx.config, loja)
        return await asyncio.to_thread(
            run_reconciliation, ctx.config, endpoints,
            autoregister=_flag(ctx.args, "autoregister"),
            fix_divergent=_flag(ctx.args, "fix_divergent", "fix-divergent"),
            dry_run=ctx.dry_run, loja=loja,
        )
