"""Benchmark: run-report ingest (SQLite, PostgreSQL) and the /fleet page on the 90-day volume.

One command (`uv run python benchmarks/fleet/run.py`), one table:

- ingest: the real server (uvicorn, 2 workers) on a fresh database; `wrk` posts 50-host run
  reports, each with its own run id, from 100 proxies, for `--duration` seconds; then the stored
  runs are counted (every 2xx must be stored). The server's own CPU per report (its processes'
  user + system time over the wrk run, from /proc) is given beside the rate: on a shared machine
  it moves far less than the rate does. PostgreSQL runs with its durable defaults (fsync
  on); SQLite in WAL mode with synchronous=NORMAL, as the server configures it.
- page: a SQLite database is filled with `--proxies` proxies (20 per network) and their scheduled
  runs, `--runs-per-day` per proxy for `--days` days (1,000 x 100 x 90 = 9 million run rows; each
  generated run carries a small 3-host document), the latest-state tables as ingest leaves them;
  then a signed-in client fetches /fleet `--page-requests` times and the server's own time for
  the page (`Server-Timing`) is reported.

Everything it starts (servers, a PostgreSQL cluster) is stopped; its files are deleted.
Targets: ingest >= 1,000 reports/s on both databases, /fleet <= 200 ms server time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # devtools/, tests/ and benchmarks/ beside src/
from benchmarks.server.run import free_port, seed, wait_http, wrk
from devtools.processes import group_processes, stop_group

from flageemonitor.server import migrate
from flageemonitor.server.core.config import Settings
from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope
from flageemonitor.server.core.secretbox import SecretBox
from flageemonitor.server.services import clients, configs, networks, people

STATUSES = ["ok"] * 44 + ["failed", "unreachable", "auth_failed", "timeout", "skipped_rollout", "ok"]
PASSWORD = "benchmark-password"
ACTIONS = ("diagnose_env", "pdv_test_sudo", "status_caixa")


def report_template(hosts: int) -> str:
    """A contract body with `%d` placeholders for the proxy and the run id (Lua string.format)."""
    now = datetime.now(UTC)
    body = {
        "proxy_id": "PROXY", "run_id": "RUN",
        "action": {"requested": "diagnose_env", "canonical": "diagnose_env", "provider": "arius", "version": "1.0.0"},
        "trigger": "schedule", "dry_run": False,
        "started_at": (now - timedelta(seconds=30)).isoformat(), "finished_at": now.isoformat(),
        "summary": {"total": hosts, "ok": 45, "changed": 0, "failed": 1, "unreachable": 1, "auth_failed": 1,
                    "timeout": 1, "skipped": 1, "blocked": 0, "planned": 0},
        "hosts": [{"host": f"BENCH-LOJA{1 + i // 10:03d}-PDV{200 + i % 10}", "ip": f"10.1.{i // 10}.{i % 10 + 1}",
                   "status": STATUSES[i % len(STATUSES)], "changed": False,
                   "detail": "connected, command ran" if STATUSES[i % len(STATUSES)] == "ok"
                   else "BENCH-LOJA001-PDV201 (10.1.0.1:22): connection refused", "duration_s": 0.4}
                  for i in range(hosts)],
        "local": None, "error": None,
    }
    text = json.dumps(body).replace("%", "%%")
    return text.replace('"PROXY"', '"bench-proxy-%d"').replace('"RUN"', '"run-%s-%d-%d"')


LUA = """
local template = [==[{template}]==]
local prefix = "{prefix}"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(template, counter % {proxies}, prefix, tid, counter)
  return wrk.format("POST", nil, nil, body)
end
"""


def start_server(db_url: str, port: int, workdir: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FLAGEEMONITOR_DATABASE_URL": db_url, "FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "100000"}
    log = (workdir / f"server-{port}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "flageemonitor.server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning"],
        env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stored_runs(db_url: str) -> int:
    from sqlalchemy import func, select

    from flageemonitor.server.models import Run

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Run)) or 0)
    finally:
        engine.dispose()


def group_cpu_s(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group `pgid` (from /proc)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in group_processes(pgid))
    return ticks / os.sysconf("SC_CLK_TCK")


def ingest(name: str, db_url: str, workdir: Path, args: argparse.Namespace) -> list[str]:
    token = seed(db_url)
    port = free_port()
    proc = start_server(db_url, port, workdir, args.workers)
    try:
        wait_http(f"http://127.0.0.1:{port}/health")
        script = workdir / f"ingest-{name}.lua"
        script.write_text(LUA.format(template=report_template(args.hosts), prefix=uuid.uuid4().hex[:8],
                                     proxies=args.report_proxies))
        headers = {"X-Bot-Token": token, "Content-Type": "application/json"}
        cpu_before = group_cpu_s(proc.pid)
        result = wrk(f"ingest {name}", f"http://127.0.0.1:{port}/api/ingest/bot/runs", headers, args.duration,
                     args.connections, args.threads, script)
        cpu_s = group_cpu_s(proc.pid) - cpu_before
    finally:
        stop_group(proc)
    stored = stored_runs(db_url)
    ok = round(result.rps * args.duration) - result.non2xx
    verdict = "met" if result.rps >= 1000 and result.non2xx == 0 else "NOT met"
    per_report = cpu_s * 1000 / max(1, round(result.rps * args.duration))
    return [f"ingest, {name}", f"{result.rps:,.0f} reports/s", f"{result.p50_ms:.1f}", f"{result.p99_ms:.1f}",
            f"{result.non2xx} non-2xx; ~{ok:,} answered 2xx, {stored:,} stored; "
            f"server CPU {per_report:.2f} ms/report (database server not counted)", f">= 1,000/s: {verdict}"]


def fill_page_database(path: Path, args: argparse.Namespace) -> tuple[str, int]:
    """Migrate, then write the volume straight into SQLite (what ingest would have left)."""
    db_url = f"sqlite:///{path}"
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    network_count = (args.proxies + 19) // 20
    box = SecretBox(Settings(database_url=db_url).key_file)
    with session_scope(make_sessionmaker(engine)) as s:
        clients.add(s, "bench", "bench")
        for n in range(network_count):
            networks.add(s, "bench", f"NET{n + 1:03d}", "bench")
            configs.store(s, f"NET{n + 1:03d}", {"PARAM_PROVIDER": "arius", "PARAM_HEARTBEAT_INTERVAL": 60}, "bench",
                          box=box)
        people.create(s, "bench", PASSWORD, "bench")
    engine.dispose()
    now = datetime.now(UTC)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    blob = zlib.compress(json.dumps([{"host": f"H{i}", "ip": None, "status": "ok", "changed": False, "detail": "",
                                      "duration_s": 0.1} for i in range(3)]).encode(), 1)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    proxies = [(p + 1, p // 20 + 1, f"proxy-{p:04d}", f"host-{p:04d}", "0.1.0", "sha256:" + "b" * 64,
                1 if p % 7 else 0, 3600.0, 0, None if p % 11 else "spool: BI answered 503",
                (now - timedelta(days=args.days)).strftime(fmt),
                (now - timedelta(seconds=30 if p % 13 else 400 if p % 2 else 4000)).strftime(fmt))
               for p in range(args.proxies)]
    conn.executemany("INSERT INTO proxies (id, network_id, proxy_uid, hostname, image_version, image_digest,"
                     " config_version, uptime_s, spool_depth, last_error, first_seen, last_seen)"
                     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", proxies)
    total = args.proxies * args.runs_per_day * args.days
    step = timedelta(days=args.days) / total
    start = now - timedelta(days=args.days)
    columns = ("network_id, proxy_id, run_uid, requested, canonical, provider, action_version, trigger, dry_run,"
               " started_at, finished_at, received_at, total, ok, changed, failed, unreachable, auth_failed, timeout,"
               " skipped, blocked, planned, hosts_z")

    def rows(first: int, last: int):  # type: ignore[no-untyped-def]
        for i in range(first, last):
            p = i % args.proxies
            at = (start + step * i).strftime(fmt)
            action = ACTIONS[(i // args.proxies) % len(ACTIONS)]
            failed = 1 if i % 17 == 0 else 0
            yield (p // 20 + 1, p + 1, f"{i:032x}", action, action, "arius", "1.0.0", "schedule", 0, at, at, at,
                   50, 50 - failed, 0, failed, 0, 0, 0, 0, 0, 0, blob)

    sql = f"INSERT INTO runs ({columns}) VALUES ({','.join('?' * 23)})"  # noqa: S608
    chunk = 200_000
    for first in range(0, total, chunk):
        conn.executemany(sql, rows(first, min(total, first + chunk)))
        conn.commit()
    finished = now.strftime(fmt)
    last_runs = [(p + 1, a, a, f"last-{p}-{a}", finished, finished, 50, 48 if p % 5 == 0 else 50, 0,
                  2 if p % 5 == 0 else 0, None) for p in range(args.proxies) for a in ACTIONS]
    conn.executemany("INSERT INTO proxy_last_runs VALUES (?,?,?,?,?,?,?,?,?,?,?)", last_runs)
    endpoints = [(p // 20 + 1, f"NET{p // 20 + 1:03d}-LOJA{p % 20 + 1:03d}-PDV{200 + h}", a, p % 20 + 1,
                  "10.0.0.1", STATUSES[h], 0, "", 0.3, f"last-{p}-{a}", finished)
                 for p in range(args.proxies) for h in range(50) for a in ACTIONS]
    conn.executemany("INSERT INTO endpoint_status (network_id, host, canonical, store, ip, status, changed,"
                     " detail, duration_s, run_uid, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", endpoints)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return db_url, total


def page(db_url: str, workdir: Path, args: argparse.Namespace, runs: int) -> list[str]:
    port = free_port()
    proc = start_server(db_url, port, workdir, 1)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health", timeout=600)
        with httpx.Client(base_url=base, timeout=60) as client:
            form = client.get("/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            r = client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": csrf})
            if r.status_code not in (200, 303):
                raise SystemExit(f"sign-in failed: {r.status_code}")
            client.get("/fleet")  # warm: templates compiled, caches filled
            server_ms: list[float] = []
            client_ms: list[float] = []
            cpu_ms: list[float] = []
            size = 0
            for _ in range(args.page_requests):
                t0 = time.perf_counter()
                r = client.get("/fleet")
                client_ms.append((time.perf_counter() - t0) * 1000)
                timing = dict(part.strip().split(";dur=") for part in r.headers["server-timing"].split(","))
                server_ms.append(float(timing["app"]))
                cpu_ms.append(float(timing["cpu"]))
                size = len(r.content)
                if r.status_code != 200 or f"host-{args.proxies - 1:04d}" not in r.text:
                    raise SystemExit(f"/fleet answered {r.status_code} without every proxy")
    finally:
        stop_group(proc)
    server_ms.sort()
    p50 = statistics.median(server_ms)
    p95 = server_ms[int(len(server_ms) * 0.95) - 1]
    verdict = "met" if p95 <= 200 else "NOT met"
    return [f"/fleet, {args.proxies:,} proxies, {runs:,} runs (SQLite)", f"{len(server_ms)} pages, {size // 1024} KiB",
            f"{p50:.0f}", f"{p95:.0f}", f"server ms p50/p95; its CPU p50 {statistics.median(cpu_ms):.0f} ms; "
            f"client p50 {statistics.median(client_ms):.0f} ms",
            f"p95 <= 200 ms: {verdict}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of wrk per database")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hosts", type=int, default=50, help="hosts per run report")
    parser.add_argument("--report-proxies", type=int, default=100, help="distinct proxies sending reports")
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--runs-per-day", type=int, default=100)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument("--skip", choices=["ingest", "page", "postgres"], action="append", default=[])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found (Debian package: wrk)")
    work = Path(tempfile.mkdtemp(prefix="flageemonitor-fleet-bench-"))
    rows: list[list[str]] = []
    try:
        if "ingest" not in args.skip:
            rows.append(ingest("SQLite", f"sqlite:///{work / 'ingest.db'}", work, args))
            print(rows[-1], flush=True)
            if "postgres" not in args.skip:
                from tests.fixtures.postgres import PostgresCluster

                cluster = PostgresCluster()
                try:
                    cluster.start(durable=True)
                    rows.append(ingest("PostgreSQL", cluster.create_database(), work, args))
                    print(rows[-1], flush=True)
                finally:
                    cluster.destroy()
        if "page" not in args.skip:
            t0 = time.monotonic()
            db_url, runs = fill_page_database(work / "page.db", args)
            print(f"generated {runs:,} runs in {time.monotonic() - t0:.0f} s "
                  f"({(work / 'page.db').stat().st_size / 2**30:.1f} GiB)", flush=True)
            rows.append(page(db_url, work, args, runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print("| measure | throughput / pages | p50 ms | p99 / p95 ms | notes | target |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\nload average: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}")


if __name__ == "__main__":
    main()
