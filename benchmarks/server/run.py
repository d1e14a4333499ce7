"""Benchmark: the control plane's `GET /api/ingest/bot/config` against nginx serving the same JSON.

One command (`uv run python benchmarks/server/run.py`): seeds a SQLite database (or, with
`--database postgresql`, a private PostgreSQL cluster with its durable defaults), starts the real
server (uvicorn, 2 workers) and a private nginx (own prefix and config, not the system one) on
free loopback ports, runs `wrk` against each, prints requests/s and p99 and the ratios, and
stops everything it started. Goals: the conditional poll answered 304 (what proxies do all day)
>= 20% of nginx's throughput with p99 <= 3x nginx's; the 200 >= 25% with p99 <= 3x.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from flageemonitor.server import migrate
from flageemonitor.server.core.config import Settings
from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope
from flageemonitor.server.core.secretbox import SecretBox
from flageemonitor.server.services import clients, configs, networks, tokens

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # devtools/ lives beside src/
from devtools.processes import stop_group

CONFIG = {
    "PARAM_PROVIDER": "arius",
    "TIMEZONE": "America/Sao_Paulo",
    "PARAM_INVENTORY": "zabbix",
    "PARAM_ZABBIX_SERVER": "monitor.example.com",
    "PARAM_CRON_ACTIONS": {"diagnose_env": "*/30 * * * *", "pdv_install": True},
    "PARAM_IP_CONCENTRADORES": [f"10.0.{i}.10" for i in range(20)],
    "max_threads": 50,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        raise ValueError(value)
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]


def wrk(name: str, url: str, headers: dict[str, str], duration: int, connections: int, threads: int,
        script: Path | None = None) -> Result:
    """One wrk run; `script` is a Lua file that builds the requests (bodies) itself."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result(name, rps, p50, p99, int(bad.group(1)) if bad else 0)


def seed(db_url: str) -> str:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    with session_scope(make_sessionmaker(engine)) as s:
        clients.add(s, "bench", "bench")
        networks.add(s, "bench", "BENCH", "bench")
        configs.store(s, "BENCH", CONFIG, "bench", box=SecretBox(Settings(database_url=db_url).key_file))
        token, _ = tokens.issue(s, "bench", "bench", networks=["BENCH"])
    engine.dispose()
    return token


def wait_http(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp; fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location = /api/ingest/bot/config {{
            default_type application/json;
            alias {www}/config.json;
        }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers and nginx workers")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median round per target is shown")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (Debian packages: wrk, nginx-light)")

    work = Path(tempfile.mkdtemp(prefix="flageemonitor-bench-"))  # database, logs: private
    www = Path(tempfile.mkdtemp(prefix="flageemonitor-bench-www-"))  # only the served JSON
    os.chmod(www, 0o755)  # noqa: S103  nginx workers run unprivileged and must read config.json
    procs: list[subprocess.Popen[bytes]] = []
    cluster = None
    os.environ["FLAGEEMONITOR_SECRETS_KEY_FILE"] = str(work / "flageemonitor.key")  # seed and server: never in cwd
    try:
        if args.database == "postgresql":
            from tests.fixtures.postgres import PostgresCluster

            cluster = PostgresCluster()
            cluster.start(durable=True)
            db_url = cluster.create_database()
        else:
            db_url = f"sqlite:///{work / 'bench.db'}"
        token = seed(db_url)
        port = free_port()
        env = {**os.environ, "FLAGEEMONITOR_DATABASE_URL": db_url, "FLAGEEMONITOR_AUTH_FAILURE_LIMIT": "1000000"}
        server_log = (work / "server.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "flageemonitor.server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(args.workers), "--log-level", "warning"],
            env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/health")
        except SystemExit:
            server_log.flush()
            print((work / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        first = httpx.get(base + "/api/ingest/bot/config", headers={"X-Bot-Token": token})
        first.raise_for_status()
        etag = first.headers["etag"]
        (www / "config.json").write_bytes(first.content)
        (www / "config.json").chmod(0o644)
        (work / "tmp").mkdir()

        nginx_port = free_port()
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=args.workers, prefix=work, www=www, port=nginx_port))
        procs.append(subprocess.Popen(
            ["nginx", "-p", str(work), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        ))
        nginx_url = f"http://127.0.0.1:{nginx_port}/api/ingest/bot/config"
        wait_http(nginx_url)
        nginx_etag = httpx.get(nginx_url).headers["etag"]
        assert httpx.get(nginx_url).content == first.content

        run = {"duration": args.duration, "connections": args.connections, "threads": args.threads}
        url = base + "/api/ingest/bot/config"
        targets = [
            ("nginx static 200", nginx_url, {}),
            ("nginx static 304", nginx_url, {"If-None-Match": nginx_etag}),
            ("server 200", url, {"X-Bot-Token": token}),
            ("server 304", url, {"X-Bot-Token": token, "If-None-Match": etag}),
        ]
        rounds: dict[str, list[Result]] = {name: [] for name, _, _ in targets}
        for _ in range(args.repeat):  # interleaved, so a noisy neighbour hurts every target alike
            for name, target_url, headers in targets:
                rounds[name].append(wrk(name, target_url, headers, **run))
        results = [sorted(rs, key=lambda r: r.rps)[len(rs) // 2] for rs in rounds.values()]
    finally:
        for proc in reversed(procs):
            stop_group(proc, grace_s=20)
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(www, ignore_errors=True)

    ref = {r.name: r for r in results}
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s x {args.repeat} (median), "
          f"{args.workers} workers each, {args.database}, {os.cpu_count()} CPUs, body {len(first.content)} bytes, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'target':<18} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>9} {'non-2xx/3xx':>12} {'vs nginx req/s':>15} "
          f"{'vs nginx p99':>13}")
    for r in results:
        base_r = ref["nginx static 304"] if r.name.endswith("304") else ref["nginx static 200"]
        print(f"{r.name:<18} {r.rps:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>9.2f} {r.non2xx:>12} "
              f"{r.rps / base_r.rps:>14.1%} {r.p99_ms / base_r.p99_ms:>12.1f}x")
    for path, share in (("200", 0.25), ("304", 0.20)):
        s, n = ref[f"server {path}"], ref[f"nginx static {path}"]
        ok = s.rps >= share * n.rps and s.p99_ms <= 3 * n.p99_ms
        print(f"goal for {path} (>= {share:.0%} of nginx req/s and p99 <= 3x nginx): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
