"""Storing check-ins and run reports, a batch at a time (see `server.ingest_writer`).

Rules:
- a check-in upserts its proxy by (network, proxy id); `last_seen` is the server's time of receipt;
- a run report is stored once per (network, run id): a retried send is reported as a duplicate;
- a non-dry run updates the latest-state tables the pages read: `endpoint_status` per host and
  action, and `proxy_last_runs` for scheduled runs; an older report arriving late never
  replaces a newer state;
- free text that looks like it may carry a secret is redacted before it is stored.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Connection, Table, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from flageemonitor.core.fleet_contract import CheckIn, HostOutcome, RunReportBody
from flageemonitor.core.hosts import parse_host_name
from flageemonitor.core.redact import redact
from flageemonitor.server.models import EndpointStatus, Proxy, ProxyLastRun, Run, as_utc

_HOSTS = TypeAdapter(list[HostOutcome])
_SUSPECT = re.compile(r"(?i)fm[ta]_|token|passw|senha|authorization|secret")
_PROXIES: Table = Proxy.__table__  # type: ignore[assignment]
_RUNS: Table = Run.__table__  # type: ignore[assignment]
_LAST: Table = ProxyLastRun.__table__  # type: ignore[assignment]
_ENDPOINTS: Table = EndpointStatus.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Received:
    """One validated body, the network it is for and the server's time of receipt."""

    network_id: int
    body: Any  # CheckIn | RunReportBody
    received_at: datetime


def _insert(conn: Connection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _scrub(text: str | None) -> str | None:
    return redact(text) if text and _SUSPECT.search(text) else text


def encode_hosts(hosts: Sequence[HostOutcome]) -> bytes:
    return zlib.compress(_HOSTS.dump_json(list(hosts)), 1)


def decode_hosts(blob: bytes) -> list[HostOutcome]:
    return _HOSTS.validate_json(zlib.decompress(blob))


def store_checkins(conn: Connection, items: Sequence[Received]) -> None:
    latest: dict[tuple[int, str], Received] = {}
    for item in items:  # one proxy twice in a batch: its last check-in wins
        latest[(item.network_id, item.body.proxy_id)] = item
    rows = []
    for item in latest.values():
        body: CheckIn = item.body
        rows.append({
            "network_id": item.network_id, "proxy_uid": body.proxy_id, "hostname": body.hostname,
            "image_version": body.image_version, "image_digest": body.image_digest,
            "config_version": body.config_version,
            "started_at": as_utc(body.started_at) if body.started_at else None,
            "uptime_s": body.uptime_s, "spool_depth": body.spool_depth, "last_error": _scrub(body.last_error),
            "sent_at": as_utc(body.sent_at) if body.sent_at else None,
            "first_seen": as_utc(item.received_at), "last_seen": as_utc(item.received_at),
        })
    if not rows:
        return
    stmt = _insert(conn, _PROXIES)
    updated = {c: stmt.excluded[c] for c in rows[0] if c not in ("network_id", "proxy_uid", "first_seen")}
    conn.execute(stmt.on_conflict_do_update(index_elements=["network_id", "proxy_uid"], set_=updated), rows)


def _proxy_ids(conn: Connection, items: Iterable[Received]) -> dict[tuple[int, str], int]:
    """Make sure each reporting proxy has a row (a report is a sign of life) and return the ids."""
    seen: dict[tuple[int, str], datetime] = {}
    for item in items:
        key = (item.network_id, item.body.proxy_id)
        seen[key] = max(seen.get(key, item.received_at), item.received_at)
    rows = [{"network_id": n, "proxy_uid": p, "first_seen": as_utc(t), "last_seen": as_utc(t)}
            for (n, p), t in seen.items()]
    stmt = _insert(conn, _PROXIES)
    conn.execute(stmt.on_conflict_do_update(index_elements=["network_id", "proxy_uid"],
                                            set_={"last_seen": stmt.excluded.last_seen}), rows)
    found = conn.execute(
        select(_PROXIES.c.id, _PROXIES.c.network_id, _PROXIES.c.proxy_uid)
        .where(tuple_(_PROXIES.c.network_id, _PROXIES.c.proxy_uid).in_(list(seen)))
    )
    return {(n, p): i for i, n, p in found}


def store_runs(conn: Connection, items: Sequence[Received]) -> list[bool]:
    """Store the reports; returns, per item, whether it was a duplicate (already stored)."""
    keys = [(item.network_id, item.body.run_id) for item in items]
    known = select(_RUNS.c.network_id, _RUNS.c.run_uid).where(tuple_(_RUNS.c.network_id, _RUNS.c.run_uid).in_(keys))
    existing: set[tuple[int, str]] = {(n, u) for n, u in conn.execute(known)} if keys else set()
    duplicates: list[bool] = []
    fresh: list[Received] = []
    for key, item in zip(keys, items, strict=True):
        duplicates.append(key in existing)
        if key not in existing:
            existing.add(key)
            fresh.append(item)
    if not fresh:
        return duplicates
    proxies = _proxy_ids(conn, fresh)
    run_rows: list[dict[str, Any]] = []
    last: dict[tuple[int, str], dict[str, Any]] = {}
    endpoints: dict[tuple[int, str, str], dict[str, Any]] = {}
    for item in fresh:
        body: RunReportBody = item.body
        proxy_id = proxies[(item.network_id, body.proxy_id)]
        hosts = [h.model_copy(update={"detail": _scrub(h.detail) or ""}) if _SUSPECT.search(h.detail) else h
                 for h in body.hosts]
        finished = as_utc(body.finished_at)
        started = as_utc(body.started_at)
        counts = body.summary.model_dump()
        run_rows.append({
            "network_id": item.network_id, "proxy_id": proxy_id, "run_uid": body.run_id,
            "requested": body.action.requested, "canonical": body.action.canonical,
            "provider": body.action.provider, "action_version": body.action.version, "trigger": body.trigger,
            "dry_run": body.dry_run, "started_at": started, "finished_at": finished,
            "received_at": as_utc(item.received_at), **counts,
            "local_ok": body.local.ok if body.local else None,
            "local_detail": _scrub(body.local.detail) if body.local else None,
            "error": _scrub(body.error), "hosts_z": encode_hosts(hosts),
        })
        if body.dry_run:
            continue  # planned changes are not the endpoint's state
        if body.trigger == "schedule":
            key = (proxy_id, body.action.canonical)
            if key not in last or last[key]["finished_at"] <= finished:
                failures = counts["failed"] + counts["unreachable"] + counts["auth_failed"] + counts["timeout"]
                last[key] = {
                    "proxy_id": proxy_id, "canonical": body.action.canonical, "requested": body.action.requested,
                    "run_uid": body.run_id, "started_at": started, "finished_at": finished,
                    "total": counts["total"], "ok": counts["ok"], "changed": counts["changed"],
                    "failures": failures + int(body.local is not None and not body.local.ok),
                    "error": _scrub(body.error),
                }
        for host in hosts:
            ekey = (item.network_id, host.host, body.action.canonical)
            if ekey in endpoints and endpoints[ekey]["finished_at"] > finished:
                continue
            endpoints[ekey] = {
                "network_id": item.network_id, "host": host.host, "canonical": body.action.canonical,
                "store": parse_host_name(host.host).loja, "ip": host.ip, "status": host.status,
                "changed": host.changed, "detail": host.detail, "duration_s": host.duration_s,
                "run_uid": body.run_id, "finished_at": finished,
            }
    conn.execute(_RUNS.insert(), run_rows)
    _upsert_newer(conn, _LAST, ["proxy_id", "canonical"], list(last.values()))
    _upsert_newer(conn, _ENDPOINTS, ["network_id", "host", "canonical"], list(endpoints.values()))
    return duplicates


def _upsert_newer(conn: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert, or update an existing row only when the new one finished no earlier."""
    if not rows:
        return
    stmt = _insert(conn, table)
    updated = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(
        stmt.on_conflict_do_update(index_elements=keys, set_=updated,
                                   where=stmt.excluded.finished_at >= table.c.finished_at),
        rows,
    )
