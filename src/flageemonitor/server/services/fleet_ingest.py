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
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from flageemonitor.core.fleet_contract import CheckIn, HostOutcome, RunReportBody
from flageemonitor.core.hosts import parse_host_name
from flageemonitor.core.redact import redact
from flageemonitor.server.models import EndpointStatus, Proxy, ProxyLastRun, Run, as_utc

_HOSTS = TypeAdapter(list[HostOutcome])
_SUSPECT = re.compile(r"(?i)fm[ta]_|token|passw|senha|authorization|secret")
_SUSPECT_WORDS = (b"fmt_", b"fma_", b"token", b"passw", b"senha", b"authorization", b"secret")
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
    suspect: bool = True  # False when the raw body held nothing that looks like a secret (looks_secret)
    raw: bytes = b""  # the decoded JSON body, kept as the run's document when nothing in it needs redacting
    generation: int | None = None  # set: store only while the change generation is this one (see ingest_writer)


def looks_secret(raw: bytes) -> bool:
    """What `_SUSPECT` finds, for the whole raw body at once (substring tests: ten times a regex's speed)."""
    lowered = raw.lower()
    return any(word in lowered for word in _SUSPECT_WORDS)


def _insert(dialect: str, table: Table) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


_CHECKIN_COLUMNS = ("hostname", "image_version", "image_digest", "config_version", "started_at", "uptime_s",
                    "spool_depth", "last_error", "sent_at", "last_seen")
_LAST_COLUMNS = ("requested", "run_uid", "started_at", "finished_at", "total", "ok", "changed", "failures", "error")


@cache
def _statements(dialect: str) -> dict[str, Any]:
    """The writer's statements, built once per dialect: building an upsert costs more than running it."""
    checkin = _insert(dialect, _PROXIES)
    touch = _insert(dialect, _PROXIES)
    last = _insert(dialect, _LAST)
    runs = _insert(dialect, _RUNS)
    return {
        "checkin": checkin.on_conflict_do_update(index_elements=["network_id", "proxy_uid"],
                                                 set_={c: checkin.excluded[c] for c in _CHECKIN_COLUMNS}),
        "touch": touch.on_conflict_do_update(index_elements=["network_id", "proxy_uid"],
                                             set_={"last_seen": touch.excluded.last_seen})
        .returning(_PROXIES.c.id, _PROXIES.c.network_id, _PROXIES.c.proxy_uid),
        "runs": runs.on_conflict_do_nothing(index_elements=["network_id", "run_uid"])
        .returning(_RUNS.c.network_id, _RUNS.c.run_uid),
        "last": last.on_conflict_do_update(index_elements=["proxy_id", "canonical"],
                                           set_={c: last.excluded[c] for c in _LAST_COLUMNS},
                                           where=last.excluded.finished_at >= _LAST.c.finished_at),
    }


def _scrub(text: str | None) -> str | None:
    return redact(text) if text and _SUSPECT.search(text) else text


@lru_cache(maxsize=100_000)
def _store_of(host: str) -> int | None:
    return parse_host_name(host).loja


class _HostsOnly(BaseModel):
    model_config = ConfigDict(extra="ignore")
    hosts: list[HostOutcome]


def encode_hosts(hosts: Sequence[HostOutcome]) -> bytes:
    return zlib.compress(_HOSTS.dump_json(list(hosts)), 1)


def decode_hosts(blob: bytes) -> list[HostOutcome]:
    """The hosts of a stored run document: a JSON list of hosts, or the report as received."""
    data = zlib.decompress(blob)
    if data.lstrip()[:1] == b"[":
        return _HOSTS.validate_json(data)
    return _HostsOnly.model_validate_json(data).hosts


def store_checkins(conn: Connection, items: Sequence[Received]) -> None:
    latest: dict[tuple[int, str], Received] = {}
    for item in items:  # one proxy twice in a batch: its last check-in wins
        latest[(item.network_id, item.body.proxy_id)] = item
    rows = []
    for _key, item in sorted(latest.items()):
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
    conn.execute(_statements(conn.dialect.name)["checkin"], rows)


def _proxy_ids(conn: Connection, items: Iterable[Received]) -> dict[tuple[int, str], int]:
    """Make sure each reporting proxy has a row (a report is a sign of life) and return the ids."""
    seen: dict[tuple[int, str], datetime] = {}
    for item in items:
        key = (item.network_id, item.body.proxy_id)
        seen[key] = max(seen.get(key, item.received_at), item.received_at)
    rows = [{"network_id": n, "proxy_uid": p, "first_seen": as_utc(t), "last_seen": as_utc(t)}
            for (n, p), t in sorted(seen.items())]
    found = conn.execute(_statements(conn.dialect.name)["touch"], rows)  # one multi-row upsert, ids returned
    return {(n, p): i for i, n, p in found}


def _run_row(item: Received, proxy_id: int) -> tuple[dict[str, Any], list[HostOutcome]]:
    """The report's `runs` row and its hosts as stored (redacted when something looked secret)."""
    body: RunReportBody = item.body
    hosts = body.hosts
    if item.suspect or not item.raw:
        hosts = [h.model_copy(update={"detail": _scrub(h.detail) or ""}) if _SUSPECT.search(h.detail) else h
                 for h in hosts]
        document = encode_hosts(hosts)
    else:  # nothing to redact: the report as received is the run's document (no second serialisation)
        document = zlib.compress(item.raw, 1)
    row = {
        "network_id": item.network_id, "proxy_id": proxy_id, "run_uid": body.run_id,
        "requested": body.action.requested, "canonical": body.action.canonical,
        "provider": body.action.provider, "action_version": body.action.version, "trigger": body.trigger,
        "dry_run": body.dry_run, "started_at": as_utc(body.started_at), "finished_at": as_utc(body.finished_at),
        "received_at": as_utc(item.received_at), **body.summary.model_dump(),
        "local_ok": body.local.ok if body.local else None,
        "local_detail": _scrub(body.local.detail) if body.local else None,
        "error": _scrub(body.error), "hosts_z": document,
    }
    return row, hosts


def store_runs(conn: Connection, items: Sequence[Received]) -> list[bool]:
    """Store the reports; returns, per item, whether it was a duplicate (already stored).

    The run rows go in first, skipping run ids already stored (`ON CONFLICT DO NOTHING`, the ids
    of the rows written returned); only the reports written move the latest-state tables.
    """
    keys = [(item.network_id, item.body.run_id) for item in items]
    first: dict[tuple[int, str], int] = {}
    for index, key in enumerate(keys):  # one run id twice in a batch: the first one is stored
        first.setdefault(key, index)
    candidates = [items[i] for i in sorted(first.values())]
    if not candidates:
        return []
    proxies = _proxy_ids(conn, candidates)
    built = [_run_row(item, proxies[(item.network_id, item.body.proxy_id)]) for item in candidates]
    written = {(n, u) for n, u in conn.execute(_statements(conn.dialect.name)["runs"], [row for row, _ in built])}
    duplicates = [first[key] != index or key not in written for index, key in enumerate(keys)]
    last: dict[tuple[int, str], dict[str, Any]] = {}
    endpoints: dict[tuple[int, str, str], tuple[Any, ...]] = {}
    for row, hosts in built:
        if (row["network_id"], row["run_uid"]) not in written or row["dry_run"]:
            continue  # a resend; or planned changes, which are not the endpoint's state
        finished, canonical, proxy_id = row["finished_at"], row["canonical"], row["proxy_id"]
        if row["trigger"] == "schedule":
            key = (proxy_id, canonical)
            if key not in last or last[key]["finished_at"] <= finished:
                failures = row["failed"] + row["unreachable"] + row["auth_failed"] + row["timeout"]
                last[key] = {
                    "proxy_id": proxy_id, "canonical": canonical, "requested": row["requested"],
                    "run_uid": row["run_uid"], "started_at": row["started_at"], "finished_at": finished,
                    "total": row["total"], "ok": row["ok"], "changed": row["changed"],
                    "failures": failures + int(row["local_ok"] is False), "error": row["error"],
                }
        for host in hosts:
            ekey = (row["network_id"], host.host, canonical)
            if ekey in endpoints and endpoints[ekey][10] > finished:
                continue
            endpoints[ekey] = (row["network_id"], host.host, canonical, _store_of(host.host), host.ip,
                               host.status, host.changed, host.detail, host.duration_s, row["run_uid"], finished)
    if last:
        conn.execute(_statements(conn.dialect.name)["last"], [last[k] for k in sorted(last)])
    _upsert_endpoints(conn, [endpoints[k] for k in sorted(endpoints)])
    return duplicates


_ENDPOINT_COLUMNS = ("network_id", "host", "canonical", "store", "ip", "status", "changed", "detail", "duration_s",
                     "run_uid", "finished_at")
_ENDPOINT_UPDATE = (
    " ON CONFLICT (network_id, host, canonical) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ENDPOINT_COLUMNS[3:])
    + " WHERE excluded.finished_at >= endpoint_status.finished_at"
)
_PG_TYPES = ("int", "text", "text", "int", "text", "text", "bool", "text", "float8", "text", "timestamptz")


def _upsert_endpoints(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """The per-host rows (most of what a report writes) go in one statement, without per-row ORM work:
    `unnest` of one array per column on PostgreSQL, the driver's own loop on SQLite."""
    if not rows:
        return
    columns = ", ".join(_ENDPOINT_COLUMNS)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"%s::{t}[]" for t in _PG_TYPES)
        conn.exec_driver_sql(f"INSERT INTO endpoint_status ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
                             + _ENDPOINT_UPDATE, tuple(list(col) for col in zip(*rows, strict=True)))
        return
    as_text = _ENDPOINTS.c.finished_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    assert as_text is not None
    stamps: dict[datetime, str] = {}
    params = [(*row[:10], stamps.setdefault(row[10], as_text(row[10]))) for row in rows]
    placeholders = ", ".join("?" * len(_ENDPOINT_COLUMNS))
    conn.exec_driver_sql(f"INSERT INTO endpoint_status ({columns}) VALUES ({placeholders})"  # noqa: S608
                         + _ENDPOINT_UPDATE, params)
