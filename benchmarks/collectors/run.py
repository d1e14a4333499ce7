"""Collector benchmark: NFC-e rows from a real MariaDB to the BI stand-in over verified TLS.

    uv run python benchmarks/collectors/run.py [--rows 1000000] [--small 250000]

Contenders, each a child process (wall time around it; CPU and peak RSS from wait4()):

- `collect_coupons` — the proxy's pipeline (`flageemonitor run cupons`): server-side cursor,
  batches of 200, every batch written to the spool (SQLite WAL, the cursor in the same commit)
  before it is sent, up to four batches in flight on kept-alive connections. Run on two table
  sizes (stores 1 and 2) to show memory stays flat. The time spent in the spool (put, commit,
  acknowledgement; both threads, summed) is measured inside the child. The spool's overhead is
  the throughput lost against the same pipeline with the spool kept in memory
  (`collect_coupons, spool in memory`: no file, no fsync).
- `original method` — what the original proxy did (reference §8.1): fetch every row, build the
  payload, then POST batches of 200, each on a fresh HTTPS connection (new TLS context and
  handshake).

The BI stand-in runs as its own process and parses every batch; the table shows what it
acknowledged. The CPU seconds MariaDB and the BI stand-in spent during each contender's run (from
/proc) show what is left of the machine's cores for the proxy. Needs root (MariaDB runs as the
mysql user).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from devtools.mariadb import MariaDb, start_mariadb  # noqa: E402
from devtools.storedb import create_schema, insert_nfce, nfce_rows  # noqa: E402

TOKEN = "bench-bi-token"
USER, PASSWORD = "bench", "bench-pass"


# ------------------------------------------------------------------ children
def memory_spool() -> type:
    """The spool's interface kept in memory (one SQLite `:memory:` database shared by every
    instance, no file, no fsync): the same pipeline without durable writes, to measure what the
    durable spool costs."""
    import contextlib
    import sqlite3
    import threading

    from flageemonitor.proxy import spool

    db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    db.executescript(spool._SCHEMA)
    lock = threading.RLock()

    class MemorySpool(spool.Spool):
        def __init__(self, path: Path, *, max_bytes: int = spool.DEFAULT_MAX_BYTES, durable: bool = True) -> None:
            self.path, self.max_bytes, self._db, self._last_put = path, max_bytes, db, 0.0

        @contextlib.contextmanager
        def transaction(self) -> Any:
            with lock:
                db.execute("BEGIN")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")

        def peek(self, queue: str, limit: int = 100, *, after: int = 0) -> Any:
            with lock:
                return super().peek(queue, limit, after=after)

        def ack(self, item: Any) -> None:
            with lock:
                super().ack(item)

        def stats(self, queues: Any = None) -> Any:
            with lock:
                return super().stats(queues)

        def close(self) -> None:
            return

    return MemorySpool


def child_ours(config_file: str, state_dir: str, loja: str, durable: str = "disk") -> None:
    import asyncio

    from flageemonitor.core.config_model import load_config_file
    from flageemonitor.core.hosts import HostFilter
    from flageemonitor.proxy import pipeline, spool
    from flageemonitor.proxy.collectors import engine, sender

    if durable == "memory":
        engine.Spool = sender.Spool = memory_spool()  # type: ignore[misc]

    spent = {"s": 0.0}

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent["s"] += time.perf_counter() - t0
        return wrapper

    spool.Spool._insert = timed(spool.Spool._insert)  # type: ignore[method-assign]
    spool.Spool.ack = timed(spool.Spool.ack)  # type: ignore[method-assign]
    original_tx = spool.Spool.transaction

    def transaction(self: spool.Spool) -> Any:
        import contextlib

        @contextlib.contextmanager
        def cm() -> Any:
            t0 = time.perf_counter()
            ctx = original_tx(self)
            db = ctx.__enter__()
            spent["s"] += time.perf_counter() - t0
            try:
                yield db
            except BaseException:
                ctx.__exit__(*sys.exc_info())
                raise
            t1 = time.perf_counter()
            ctx.__exit__(None, None, None)  # the COMMIT (fsync)
            spent["s"] += time.perf_counter() - t1
        return cm()

    spool.Spool.transaction = transaction  # type: ignore[method-assign]
    config = load_config_file(Path(config_file))
    request = pipeline.RunRequest(action="cupons", filters=HostFilter(loja=loja))
    report = asyncio.run(pipeline.execute(request, config, state_dir=Path(state_dir)))
    local = report.local or {}
    stores = local.get("concentrators", [{}])
    print(json.dumps({"ok": not report.failed, "sent": sum(s.get("sent", 0) for s in stores),
                      "spool_s": spent["s"], "detail": local.get("detail", "")}))


def child_original(host: str, port: int, bi: str, ca: str, loja: str) -> None:
    """The original's method, re-created: fetchall, then a fresh HTTPS connection per batch."""
    import httpx
    import pymysql

    conn = pymysql.connect(host=host, port=port, user=USER, password=PASSWORD, database="retag")
    with conn, conn.cursor() as cur:
        cur.execute("SELECT nroloja, dthr_emit_nfe, Pdv, NroCupom, estornado, chave_nfe, vICMS, vICMS_ST, vPIS, "
                    "vPIS_ST, vCOFINS, vCOFINS_ST, vFCP, vFCP_ST, LV, Status FROM nfce "
                    "WHERE chave_nfe IS NOT NULL AND chave_nfe <> '' AND nroloja = %s", (int(loja),))
        rows = cur.fetchall()
    payload = []
    for r in rows:
        chave = r[5] or ""
        payload.append({"rede": "BENCH", "nroloja": r[0], "DataProc": r[1].isoformat(), "dEmi": r[1].isoformat(),
                        "Pdv": int(r[2]), "Chave": chave, "modelo": int(chave[20:22]) if len(chave) >= 22 else 0,
                        "emServidor": 1, "nCupom": r[3], "vICMS": float(r[6]), "vICMS_ST": float(r[7]),
                        "vPIS": float(r[8]), "vPIS_ST": float(r[9]), "vCOFINS": float(r[10]),
                        "vCOFINS_ST": float(r[11]), "vFCP": float(r[12]), "vFCP_ST": float(r[13]), "LV": r[14],
                        "estornado": int(r[4]), "Status": r[15] or ""})
    sent = 0
    for i in range(0, len(payload), 200):
        batch = payload[i:i + 200]
        resp = httpx.post(f"https://{bi}/cupons/batch", json=batch, verify=ca, timeout=90,
                          headers={"Authorization": f"Bearer {TOKEN}"})
        if resp.status_code == 200:
            sent += len(batch)
    print(json.dumps({"ok": sent == len(payload), "sent": sent, "spool_s": None, "detail": ""}))


# ------------------------------------------------------------------ parent
def measure(argv: list[str], pycache: Path) -> dict[str, Any]:
    # an installed product imports from compiled bytecode: the children share a bytecode cache
    # (the first, small run fills it) instead of compiling every module at each start
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    with tempfile.TemporaryFile() as out:
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        out.seek(0)
        text = out.read().decode(errors="replace").strip().splitlines()
    result: dict[str, Any] = json.loads(text[-1]) if text else {"ok": False, "sent": 0, "spool_s": None}
    result.update(wall=wall, cpu=usage.ru_utime + usage.ru_stime, rss_mb=usage.ru_maxrss / 1024,
                  exit=os.waitstatus_to_exitcode(status))
    return result


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bi_stats(bi: str, ca: str) -> dict[str, Any]:
    import httpx

    data: dict[str, Any] = httpx.get(f"https://{bi}/_stats", verify=ca, timeout=30).json()
    return data


def fill(db: MariaDb, loja: int, rows: int) -> float:
    t0 = time.monotonic()
    start = datetime.now().replace(microsecond=0) - timedelta(days=30)
    insert_nfce(db, nfce_rows(rows, loja=loja, start=start, span=timedelta(days=29), seed=loja,
                              first_cupom=loja * 10_000_000))
    return time.monotonic() - t0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "ours":
            child_ours(*rest)
        else:
            child_original(rest[0], int(rest[1]), rest[2], rest[3], rest[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large table (store 2)")
    parser.add_argument("--small", type=int, default=250_000, help="rows of the small table (store 1)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="fm-bench-collectors-"))
    db = start_mariadb("127.0.0.1", buffer_pool="512M")
    bi_proc: subprocess.Popen[str] | None = None
    try:
        create_schema(db)
        db.create_reader(USER, PASSWORD, "retag")
        print(f"filling: {args.small} rows (store 1), {args.rows} rows (store 2) ...", flush=True)
        fill_s = fill(db, 1, args.small) + fill(db, 2, args.rows)
        print(f"filled in {fill_s:.0f}s", flush=True)
        bi_proc = subprocess.Popen([sys.executable, "-m", "devtools.bi_standin", "--dir", str(work / "bi"),
                                    "--token", TOKEN, "--count-only"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert bi_proc.stdout is not None
        port = int(bi_proc.stdout.readline().split()[1])
        bi, ca = f"127.0.0.1:{port}", str(work / "bi" / "ca.pem")
        config = {"PARAM_REDE": "BENCH", "PARAM_IP_CONCENTRADORES": ["127.0.0.1"], "DB_PORT": db.port,
                  "DB_USER": USER, "DB_PASS": PASSWORD, "PARAM_BI_SERVER": bi, "PARAM_TOKEN_BI": TOKEN,
                  "PARAM_BI_CERTI_PATH": ca, "PARAM_COLLECTOR_START_DAYS": 0, "PARAM_COLLECTOR_DRAIN_S": 3600}
        (work / "config.json").write_text(json.dumps(config))
        results = []
        plan = [("collect_coupons", "1", args.small), ("collect_coupons", "2", args.rows),
                ("collect_coupons, spool in memory", "2", args.rows), ("original method", "2", args.rows)]
        for name, loja, rows in plan:
            before = bi_stats(bi, ca)
            cpu_before = cpu_s(db.proc.pid), cpu_s(bi_proc.pid)
            if name.startswith("collect_coupons"):
                kind = "memory" if "memory" in name else "disk"
                argv = [sys.executable, __file__, "--child", "ours", str(work / "config.json"),
                        str(work / f"state-{loja}-{kind}"), loja, kind]
            else:
                argv = [sys.executable, __file__, "--child", "original", "127.0.0.1", str(db.port), bi, ca, loja]
            print(f"running {name} on {rows} rows ...", flush=True)
            r = measure(argv, work / "pycache")
            after = bi_stats(bi, ca)
            r.update(name=name, rows=rows, acked=after["acked_rows"] - before["acked_rows"],
                     requests=after["requests"] - before["requests"],
                     db_cpu=cpu_s(db.proc.pid) - cpu_before[0], bi_cpu=cpu_s(bi_proc.pid) - cpu_before[1])
            results.append(r)
        print()
        print("| contender | table rows | rows acknowledged by the BI | wall s | rows/s | CPU s | peak RSS MB "
              "| time in the spool s | MariaDB CPU s | BI stand-in CPU s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in results:
            spool = f"{r['spool_s']:.1f}" if r["spool_s"] is not None else "-"
            print(f"| {r['name']} | {r['rows']:,} | {r['acked']:,} | {r['wall']:.1f} | {r['acked'] / r['wall']:,.0f} "
                  f"| {r['cpu']:.1f} | {r['rss_mb']:.0f} | {spool} | {r['db_cpu']:.1f} | {r['bi_cpu']:.1f} |")
        ours, memory, orig = results[1], results[2], results[3]
        rate = {id(r): r["acked"] / r["wall"] for r in results}
        print(f"\nthroughput ratio (collect_coupons / original, {args.rows:,} rows): "
              f"{rate[id(ours)] / max(rate[id(orig)], 1e-9):.1f}x")
        print(f"durable spool overhead (throughput lost against the same pipeline with the spool in memory): "
              f"{100 * (1 - rate[id(ours)] / max(rate[id(memory)], 1e-9)):.0f}%")
        bad = [r["name"] for r in results if r["acked"] != r["rows"] or r["exit"] != 0]
        if bad:
            print(f"WARNING: incomplete delivery or failure in: {', '.join(bad)}")
            for r in results:
                print(f"  {r['name']}: {r.get('detail')}")
            return 1
        return 0
    finally:
        if bi_proc is not None:
            bi_proc.terminate()
            bi_proc.wait(timeout=30)
        db.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
