"""Soak: the proxy daemon on a real schedule for a long time; RSS and open fds over time.

    uv run python benchmarks/soak/run.py                 # 30 minutes (the reference run)
    uv run python benchmarks/soak/run.py --minutes 2     # quick check

The daemon runs as `flageemonitor daemon --config FILE` (local config, real clock, cron in
America/Sao_Paulo) with a file inventory of the sshd persona fleet (real sshd endpoints on
loopback, including a hanging one, a wrong password and a closed port), and two actions every
minute: test_endpoint_connection and diagnose_env. Every `--every` seconds it samples the
daemon's RSS, open file descriptors and threads from /proc, and whether a run was in progress
(from the heartbeat). At the end: idle RSS (samples with no run in progress) against the 60 MB
target, and the RSS/fd trend (least-squares slope over the second half, after warm-up).
`--no-fleet` uses an empty inventory (no root needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # devtools/ lives beside src/

IDLE_RSS_TARGET_MB = 60.0


def proc_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kb = float(fields["VmRSS"].split()[0])
    return {
        "rss_mb": rss_kb / 1024,
        "anon_mb": float(fields["RssAnon"].split()[0]) / 1024,
        "fds": float(len(os.listdir(f"/proc/{pid}/fd"))),
        "threads": float(fields["Threads"].strip()),
    }


def _next_wait(every: float) -> float:
    """Seconds to the next sample. With minute sampling, land at second 45 of the wall-clock
    minute: the runs fire at second 0, so most samples then see the daemon idle."""
    if every < 60:
        return every
    now = time.time()
    target = now - now % 60 + 45
    while target - now < every - 30:
        target += 60
    return target - now


def slope_per_hour(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 3:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den * 3600


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=None, help="sample interval, seconds (default 60, 10 if <5 min)")
    ap.add_argument("--no-fleet", action="store_true", help="empty inventory instead of the sshd persona fleet")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    every = args.every or (10.0 if args.minutes < 5 else 60.0)

    work = Path(tempfile.mkdtemp(prefix="flageemonitor-soak-"))
    state = work / "state"
    state.mkdir()
    fleet = None
    if args.no_fleet:
        inventory = work / "inventory.yaml"
        inventory.write_text("hosts: []\n")
        rede = "SOAK"
    else:
        from devtools.fleet import REDE, start_persona_fleet

        fleet = start_persona_fleet()
        inventory, rede = fleet.inventory_path, REDE
    config = work / "config_bot.json"
    config.write_text(json.dumps({
        "PARAM_REDE": rede,
        "TIMEZONE": "America/Sao_Paulo",
        "PARAM_INVENTORY_FILE": str(inventory),
        "CONFIG_VERSION": 1,
        "ssh": {"timeout": 5, "command_timeout": 20, "host_key_policy": "pin"},
        "PARAM_CRON_ACTIONS": {
            "pdv_test_connection": "* * * * *",
            "pdv_diagnose_env": "* * * * *",
            # the original defaults that are not implemented in this version log a skip line
        },
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAGEEMONITOR_", "ARIUSMONITOR_"))}
    env.update({"FLAGEEMONITOR_STATE_DIR": str(state), "TZ": "UTC", "PYTHONUNBUFFERED": "1"})
    cli = str(Path(sys.executable).with_name("flageemonitor"))
    log_path = work / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([cli, "daemon", "--config", str(config)], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    print(f"soak: {args.minutes:g} min, sample every {every:g}s, daemon pid {proc.pid}, "
          f"{'empty inventory' if args.no_fleet else f'{len(fleet.endpoints) if fleet else 0} fleet endpoints'}, "
          f"work dir {work}", flush=True)
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    print(f"{'t_min':>6} {'rss_mb':>7} {'anon_mb':>7} {'fds':>4} {'thr':>4} {'busy':>5} {'runs':>5} {'ok':>4} "
          f"{'failed':>6}", flush=True)
    try:
        while True:
            time.sleep(max(0.0, min(_next_wait(every), end - time.monotonic())) if rows else 3.0)
            if proc.poll() is not None:
                print(f"daemon died with exit code {proc.returncode}; log: {log_path}", flush=True)
                return 1
            s = proc_sample(proc.pid)
            hb: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                hb = json.loads((state / "daemon.heartbeat.json").read_text())
            busy = any(j.get("running") for j in (hb.get("jobs") or {}).values())
            runs = [json.loads(x) for x in (state / "run-history.jsonl").read_text().splitlines()] \
                if (state / "run-history.jsonl").exists() else []
            real = [r for r in runs if r.get("result") in ("ok", "failed", "error", "cancelled")]
            row = {"t": time.monotonic() - t0, **s, "busy": busy, "runs": len(real),
                   "ok": sum(r["result"] == "ok" for r in real), "failed": sum(r["result"] != "ok" for r in real)}
            rows.append(row)
            print(f"{row['t'] / 60:6.1f} {row['rss_mb']:7.1f} {row['anon_mb']:7.1f} {row['fds']:4.0f} "
                  f"{row['threads']:4.0f} "
                  f"{'yes' if busy else 'no':>5} {row['runs']:5d} {row['ok']:4d} {row['failed']:6d}", flush=True)
            if time.monotonic() >= end:
                break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            t_stop = time.monotonic()
            try:
                rc = proc.wait(timeout=30)
                print(f"SIGTERM: daemon exited {rc} in {time.monotonic() - t_stop:.1f}s", flush=True)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                print("SIGTERM: daemon did not exit in 30s (killed)", flush=True)
        if fleet is not None:
            fleet.remove()
    warm = [r for r in rows if r["runs"] > 0] or rows  # after the first run loaded the SSH stack
    idle = [r["rss_mb"] for r in warm if not r["busy"]] or [r["rss_mb"] for r in warm]
    half = rows[len(rows) // 2:]
    rss_slope = slope_per_hour([r["t"] for r in half], [r["rss_mb"] for r in half])
    fd_slope = slope_per_hour([r["t"] for r in half], [r["fds"] for r in half])
    print()
    print(f"idle RSS: median {statistics.median(idle):.1f} MB, max {max(idle):.1f} MB "
          f"(target <= {IDLE_RSS_TARGET_MB:.0f} MB: {'met' if max(idle) <= IDLE_RSS_TARGET_MB else 'MISSED'})")
    idle_anon = [r["anon_mb"] for r in warm if not r["busy"]] or [r["anon_mb"] for r in warm]
    print(f"idle anonymous RSS (without shared library pages): median {statistics.median(idle_anon):.1f} MB")
    print(f"peak RSS: {max(r['rss_mb'] for r in rows):.1f} MB; fds min/max {min(r['fds'] for r in rows):.0f}/"
          f"{max(r['fds'] for r in rows):.0f}")
    print(f"trend over the second half: RSS {rss_slope:+.2f} MB/h, fds {fd_slope:+.2f}/h")
    print(f"runs: {rows[-1]['runs']} ({rows[-1]['ok']} ok, {rows[-1]['failed']} failed: the fleet has failing "
          "personas on purpose)" if rows else "runs: none")
    print(f"daemon log: {log_path}" if args.keep else "")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
