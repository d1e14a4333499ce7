"""What the fleet pages (and the admin API's fleet view) show, read from the latest-state tables.

A proxy is online while its last check-in is within 2 heartbeat intervals, late up to 6, offline
beyond (the interval is the network's PARAM_HEARTBEAT_INTERVAL, default 60 s). Everything is
ordered failures first: offline proxies, then proxies whose last runs failed, then late ones.
No query here scans the run table: the overview reads proxies and `proxy_last_runs`, a network's
page reads `endpoint_status` and the newest runs by index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from flageemonitor.core.fleet_contract import FAILURE_STATUSES, HostOutcome
from flageemonitor.server.errors import Invalid, NotFound
from flageemonitor.server.models import (
    Client,
    EndpointStatus,
    Network,
    Proxy,
    ProxyLastRun,
    Run,
    as_utc,
)
from flageemonitor.server.services import configs
from flageemonitor.server.services.fleet_ingest import decode_hosts

ONLINE_INTERVALS = 2
LATE_INTERVALS = 6
STORE_RE = re.compile(r"^(?:loja)?0*(\d{1,6})$", re.IGNORECASE)
STATUS_FILTERS = ("failures", "ok", "changed", "failed", "unreachable", "auth_failed", "timeout",
                  "skipped_rollout", "blocked_compat")
_SEVERITY = {"offline": 3, "late": 1, "online": 0}


def proxy_state(last_seen: datetime, interval_s: int, now: datetime) -> str:
    age = (now - as_utc(last_seen)).total_seconds()
    if age <= ONLINE_INTERVALS * interval_s:
        return "online"
    if age <= LATE_INTERVALS * interval_s:
        return "late"
    return "offline"


def parse_store(text: str | None) -> int | None:
    """`LOJA001`, `loja1`, `001` or `1` -> 1; empty -> None."""
    if text is None or not text.strip():
        return None
    m = STORE_RE.match(text.strip())
    if not m:
        raise Invalid(f"store {text[:40]!r}: use LOJA001 or a store number")
    return int(m.group(1))


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much, per run
class LastRun:
    canonical: str
    requested: str
    run_uid: str
    finished_at: datetime
    total: int
    ok: int
    changed: int
    failures: int
    error: str | None

    @property
    def failed(self) -> bool:
        return self.failures > 0 or bool(self.error)


@dataclass
class ProxyView:
    uid: str
    hostname: str | None
    state: str
    last_seen: datetime
    image_version: str | None
    image_digest: str | None
    config_version: int | None
    config_latest: bool | None
    spool_depth: int | None
    last_error: str | None
    runs: list[LastRun] = field(default_factory=list)

    @cached_property  # read by the sort, the network's severity and the page
    def severity(self) -> int:
        failing = 2 if any(r.failed for r in self.runs) or self.last_error else 0
        return max(_SEVERITY[self.state], failing)


@dataclass
class NetworkView:
    code: str
    client: str
    config_version: int | None
    heartbeat_s: int
    proxies: list[ProxyView] = field(default_factory=list)

    @property
    def severity(self) -> int:
        return max((p.severity for p in self.proxies), default=0)

    def count(self, state: str) -> int:
        return sum(1 for p in self.proxies if p.state == state)


def _networks(s: Session, only: int | None = None) -> dict[int, NetworkView]:
    latest = configs.latest_of_all(s)
    q = select(Network.id, Network.code, Client.name).join(Client, Client.id == Network.client_id)
    if only is not None:
        q = q.where(Network.id == only)
    out: dict[int, NetworkView] = {}
    for net_id, code, client in s.execute(q):
        cfg = latest.get(net_id)
        out[net_id] = NetworkView(code, client, cfg.version if cfg else None, configs.heartbeat_interval(cfg))
    return out


def _stamp(s: Session, column: Any) -> Any:
    """A timestamp column read fast: SQLite's text through `datetime.fromisoformat` (C) instead of
    the generic result processor (a regex per value: most of /fleet's query time on 4,000 rows)."""
    return type_coerce(column, String) if s.get_bind().dialect.name == "sqlite" else column


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        try:  # naive UTC text as SQLAlchemy stores it, parsed as UTC in one call (replace() costs 5 parses)
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            return as_utc(datetime.fromisoformat(value))
    return as_utc(value)


def _attach_proxies(s: Session, nets: dict[int, NetworkView], now: datetime, only: int | None = None) -> None:
    runs: dict[int, list[LastRun]] = {}
    q_runs = select(ProxyLastRun.proxy_id, ProxyLastRun.canonical, ProxyLastRun.requested, ProxyLastRun.run_uid,
                    _stamp(s, ProxyLastRun.finished_at), ProxyLastRun.total, ProxyLastRun.ok, ProxyLastRun.changed,
                    ProxyLastRun.failures, ProxyLastRun.error)
    q_proxies = select(Proxy.id, Proxy.network_id, Proxy.proxy_uid, Proxy.hostname, _stamp(s, Proxy.last_seen),
                       Proxy.image_version, Proxy.image_digest, Proxy.config_version, Proxy.spool_depth,
                       Proxy.last_error)
    if only is not None:
        q_runs = q_runs.join(Proxy, Proxy.id == ProxyLastRun.proxy_id).where(Proxy.network_id == only)
        q_proxies = q_proxies.where(Proxy.network_id == only)
    conn = s.connection()  # Core rows: the ORM's per-row loading was most of the query time
    for pid, canonical, requested, run_uid, finished, *counts in conn.execute(q_runs).all():
        runs.setdefault(pid, []).append(LastRun(canonical, requested, run_uid, _utc(finished), *counts))
    for pid, net_id, uid, hostname, seen, image, digest, cfg_version, spool, error in conn.execute(q_proxies).all():
        net = nets.get(net_id)
        if net is None:
            continue
        latest = None if cfg_version is None or net.config_version is None else cfg_version >= net.config_version
        proxy_runs = sorted(runs.get(pid, []), key=lambda r: (not r.failed, r.canonical))
        seen = _utc(seen)
        net.proxies.append(ProxyView(uid, hostname, proxy_state(seen, net.heartbeat_s, now), seen, image,
                                     digest, cfg_version, latest, spool, error, proxy_runs))
    for net in nets.values():
        net.proxies.sort(key=lambda p: (-p.severity, p.hostname or "", p.uid))


def overview(s: Session, now: datetime) -> list[NetworkView]:
    """Every network with its proxies, networks with problems first."""
    nets = _networks(s)
    _attach_proxies(s, nets, now)
    return sorted(nets.values(), key=lambda n: (-n.severity, n.code))


@dataclass(frozen=True)
class EndpointRow:
    host: str
    store: int | None
    canonical: str
    status: str
    changed: bool
    detail: str
    ip: str | None
    run_uid: str
    finished_at: datetime

    @property
    def failed(self) -> bool:
        return self.status in FAILURE_STATUSES


@dataclass(frozen=True)
class RunRow:
    run_uid: str
    requested: str
    canonical: str
    trigger: str
    dry_run: bool
    finished_at: datetime
    total: int
    ok: int
    changed: int
    failures: int
    error: str | None
    proxy_uid: str
    hostname: str | None


@dataclass
class NetworkPage:
    network: NetworkView
    endpoints: list[EndpointRow]
    endpoints_total: int
    actions: list[str]
    runs: list[RunRow]


def _run_rows(s: Session, network_id: int, limit: int) -> list[RunRow]:
    failures = Run.failed + Run.unreachable + Run.auth_failed + Run.timeout
    q = (
        select(Run.run_uid, Run.requested, Run.canonical, Run.trigger, Run.dry_run, Run.finished_at, Run.total,
               Run.ok, Run.changed, failures, Run.error, Proxy.proxy_uid, Proxy.hostname)
        .join(Proxy, Proxy.id == Run.proxy_id)
        .where(Run.network_id == network_id)
        .order_by(Run.id.desc())
        .limit(limit)
    )
    return [RunRow(uid, req, can, trig, dry, as_utc(fin), *rest) for uid, req, can, trig, dry, fin, *rest in
            s.execute(q)]


def network_page(s: Session, code: str, now: datetime, *, store: int | None = None, status: str | None = None,
                 action: str | None = None, limit: int = 1000, runs: int = 30) -> NetworkPage:
    net = s.scalar(select(Network).where(Network.code == code))
    if net is None:
        raise NotFound(f"unknown network {code!r}")
    nets = _networks(s, only=net.id)
    _attach_proxies(s, nets, now, only=net.id)
    q = select(EndpointStatus).where(EndpointStatus.network_id == net.id)
    if store is not None:
        q = q.where(EndpointStatus.store == store)
    if action:
        q = q.where(EndpointStatus.canonical == action)
    if status == "failures":
        q = q.where(EndpointStatus.status.in_(sorted(FAILURE_STATUSES)))
    elif status == "changed":
        q = q.where(EndpointStatus.changed.is_(True))
    elif status:
        q = q.where(EndpointStatus.status == status)
    total = int(s.scalar(select(func.count()).select_from(q.subquery())) or 0)
    failing = EndpointStatus.status.in_(sorted(FAILURE_STATUSES))
    rows = s.scalars(q.order_by(failing.desc(), EndpointStatus.host, EndpointStatus.canonical).limit(limit))
    endpoints = [EndpointRow(e.host, e.store, e.canonical, e.status, e.changed, e.detail, e.ip, e.run_uid,
                             as_utc(e.finished_at)) for e in rows]
    actions = list(s.scalars(select(EndpointStatus.canonical).where(EndpointStatus.network_id == net.id)
                             .distinct().order_by(EndpointStatus.canonical)))
    return NetworkPage(nets[net.id], endpoints, total, actions, _run_rows(s, net.id, runs))


@dataclass
class RunPage:
    network: str
    run: Run
    proxy_uid: str
    hostname: str | None
    hosts: list[HostOutcome]


def run_page(s: Session, code: str, run_uid: str) -> RunPage:
    row = s.execute(
        select(Run, Proxy.proxy_uid, Proxy.hostname)
        .join(Network, Network.id == Run.network_id)
        .join(Proxy, Proxy.id == Run.proxy_id)
        .where(Network.code == code, Run.run_uid == run_uid)
    ).first()
    if row is None:
        raise NotFound(f"no run {run_uid[:64]!r} in network {code[:64]!r} (it may have been pruned)")
    run, uid, hostname = row
    hosts = sorted(decode_hosts(run.hosts_z), key=lambda h: (not h.is_failure, h.host))
    return RunPage(code, run, uid, hostname, hosts)
