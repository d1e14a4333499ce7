"""Fan-out benchmark: `flageemonitor run test_endpoint_connection` vs a bare asyncssh gather vs
`ansible all -m raw`, over a loopback fleet of real sshd endpoints (10% of them dead).

    uv run python benchmarks/fanout/run.py --hosts 500 [--concurrency N] [--no-ansible]

Needs root (the sshd fleet, see devtools.fleet). Ansible-core is installed once into
its own virtualenv under ~/.cache/flageemonitor-bench (the version pinned in uv.lock's `bench`
group), so the project environment is left alone. Each contender runs as a child process; wall
time is measured around it, CPU (user+sys) and peak RSS come from wait4() and include the
processes it waited for (ansible's workers and ssh clients).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # devtools/ (the sshd fleet) lives beside src/

from devtools.fleet import Fleet, start_bench_fleet  # noqa: E402

ANSIBLE_VERSION = "2.19.14"
CACHE = Path.home() / ".cache" / "flageemonitor-bench"


@dataclass
class Measure:
    name: str
    wall: float
    cpu: float
    rss_mb: float
    ok: int
    failed: int
    note: str = ""
    exit_code: int = 0


def measure(name: str, argv: list[str], env: dict[str, str],
            parse: Callable[[str], tuple[int, int, str]], *, stderr_to: Path | None = None) -> Measure:
    """`argv` timed as a child process; `parse` reads its stdout. Its stderr is dropped, or kept
    in `stderr_to` (a contender that reports on stderr is judged from it afterwards)."""
    with tempfile.TemporaryFile() as out, open(stderr_to or os.devnull, "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    ok, failed, note = parse(text)
    return Measure(name, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, ok, failed,
                   f"exit {proc.returncode}" + (f"; {note}" if note else ""), proc.returncode)


def parse_ours(text: str) -> tuple[int, int, str]:
    report = json.loads(text)
    hosts = report["hosts"]
    dead = [h["duration_s"] for h in hosts if h["status"] != "ok"]
    cached = sum(1 for h in hosts if h["facts"] and h["facts"].get("cached"))
    reasons = Counter(h["detail"].split(": ", 1)[-1][:60] for h in hosts if h["status"] != "ok")
    return (report["summary"]["ok"], report["summary"]["failures"],
            f"slowest failed host {max(dead, default=0):.2f}s; facts cached {cached}; "
            f"failures: {dict(reasons.most_common(3))}")


def parse_bare(text: str) -> tuple[int, int, str]:
    data = json.loads(text.strip().splitlines()[-1])
    return data["ok"], data["failed"], f"slowest failed host {data['slowest_failed_s']:.2f}s"


def parse_ansible(text: str) -> tuple[int, int, str]:
    lines = [ln for ln in text.splitlines() if " | " in ln]
    ok = sum(1 for ln in lines if "| CHANGED |" in ln or "| SUCCESS |" in ln)
    return ok, len(lines) - ok, ""


def tool_bin(package: str, version: str, program: str, prefix: str) -> Path:
    """`program` of `package==version`, installed once into its own virtualenv under CACHE."""
    venv = CACHE / f"{prefix}-{version}"
    exe = venv / "bin" / program
    if not exe.exists():
        print(f"installing {package} {version} into {venv} ...", file=sys.stderr)
        subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
                        f"{package}=={version}"], check=True)
    return exe


def ansible_bin() -> Path:
    return tool_bin("ansible-core", ANSIBLE_VERSION, "ansible", "ansible")


def ansible_inventory(fleet: Fleet, path: Path) -> None:
    lines = ["[fleet]"]
    for e in fleet.endpoints:
        lines.append(f"{e.name} ansible_host={e.ip} ansible_port={e.port}")
    lines += ["", "[fleet:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={fleet.client_key}",
              "ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"]
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=0, help="hosts in flight (default: all)")
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    parser.add_argument("--ansible-forks", type=int, default=200)
    parser.add_argument("--dead-share", type=float, default=0.1, help="share of dead hosts (default 0.1)")
    parser.add_argument("--no-ansible", action="store_true")
    args = parser.parse_args()
    concurrency = args.concurrency or args.hosts

    dead = round(args.hosts * args.dead_share)
    print(f"starting a fleet of {args.hosts} endpoints ({dead} dead) ...", file=sys.stderr)
    fleet = start_bench_fleet(args.hosts, dead_share=args.dead_share)
    try:
        fleet.write_config(ssh={"timeout": args.connect_timeout, "command_timeout": 30, "host_key_policy": "pin"},
                           max_threads=concurrency)
        env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(fleet.state_dir), "FLAGEEMONITOR_LOG_LEVEL": "WARNING"}
        ours = [str(Path(sys.executable).parent / "flageemonitor"), "run", "test_endpoint_connection", "--json",
                "--config", str(fleet.config_path), "--inventory", str(fleet.inventory_path),
                "--concurrency", str(concurrency)]
        results = [
            measure("bare asyncssh gather", [sys.executable, str(Path(__file__).with_name("bare_asyncssh.py")),
                                             str(fleet.inventory_path), str(args.connect_timeout), str(concurrency)],
                    env, parse_bare),
            measure("flageemonitor run (cold: probe + pin)", ours, env, parse_ours),
            measure("flageemonitor run (warm: cached facts)", ours, env, parse_ours),
        ]
        if not args.no_ansible:
            inv = fleet.base / "ansible.ini"
            ansible_inventory(fleet, inv)
            aenv = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_HOME": str(fleet.base / "ansible"),
                    "ANSIBLE_TIMEOUT": str(int(args.connect_timeout)), "ANSIBLE_SSH_RETRIES": "0",
                    "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_DEPRECATION_WARNINGS": "False"}
            results.append(measure(f"ansible all -m raw -f {args.ansible_forks}",
                                   [str(ansible_bin()), "all", "-i", str(inv), "-m", "raw", "-a", "echo ok",
                                    "-f", str(args.ansible_forks), "-o"], aenv, parse_ansible))
    finally:
        fleet.remove()

    bare = results[0]
    print(f"\nfan-out over {args.hosts} hosts ({dead} dead: refused/blackholed/silent in turn), "
          f"concurrency {concurrency}, connect timeout {args.connect_timeout:g}s, {os.cpu_count()} cores\n")
    header = f"{'contender':42} {'wall s':>7} {'CPU s':>7} {'ms CPU/host':>11} {'peak RSS MB':>11} " \
             f"{'ok':>4} {'fail':>4} {'wall/bare':>9}  notes"
    print(header)
    print("-" * len(header))
    for m in results:
        print(f"{m.name:42} {m.wall:7.2f} {m.cpu:7.2f} {1000 * m.cpu / args.hosts:11.2f} {m.rss_mb:11.1f} "
              f"{m.ok:4d} {m.failed:4d} {m.wall / bare.wall:9.2f}  {m.note}")
    mine = [m for m in results if m.name.startswith("flageemonitor")]
    print(f"\ntargets at 500 hosts: wall <= 1.5x bare (ours: {', '.join(f'{m.wall / bare.wall:.2f}x' for m in mine)}), "
          f"<= 10 ms controller CPU per host (ours: {', '.join(f'{1000 * m.cpu / args.hosts:.1f}' for m in mine)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
