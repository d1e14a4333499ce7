"""Agent install benchmark: `flageemonitor run pdv_install` vs an Ansible playbook vs a pyinfra
deploy, each installing the real agent bundle on the same fleet of agent-capable endpoints (cold:
nothing installed; then a no-change run), against a bare asyncssh connect+command baseline
(measured at the start and again right before our no-change run, with the agents up).

    uv run python benchmarks/agent_install/run.py --hosts 200 [--repo DIR] [--only|--skip ours,pyinfra,ansible]

Needs root (the sshd fleet, devtools.fleet.start_agent_bench_fleet: per endpoint its own tree,
agent port and Python for Ansible's modules). The bundle repository is built once with
`deploy.agent_bundle.build` into /var/cache/flageemonitor-test/agent-bundle (as the tests do) unless
--repo names one.
ansible-core and pyinfra are installed once into their own virtualenvs under
~/.cache/flageemonitor-bench. Between contenders every endpoint is put back as it was with
`flageemonitor run pdv_uninstall --all`. After every run the agents are counted with a real
`agent.ping`: a contender that exits non-zero, reports a failure or leaves an agent not answering
is marked INVALID in the table instead of given a time (an agent gets 60 s to come up). Wall time
around each child process; CPU (user+sys) and peak RSS from wait4(), including the processes it
waited for (ansible's forks, ssh clients). Our runs use `--batch all` (one wave, as the other
contenders run), not the canary an endpoint-changing action gets by default.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from devtools.fleet import Fleet, start_agent_bench_fleet  # noqa: E402

_spec = importlib.util.spec_from_file_location("fanout_run", ROOT / "benchmarks" / "fanout" / "run.py")
assert _spec is not None and _spec.loader is not None
fanout = importlib.util.module_from_spec(_spec)
sys.modules["fanout_run"] = fanout
_spec.loader.exec_module(fanout)
Measure, measure, CACHE = fanout.Measure, fanout.measure, fanout.CACHE
PYINFRA_VERSION = "3.10.0"


def bundle_repo(given: Path | None) -> Path:
    """`given`, else the tests' build (deploy.agent_bundle.build, kept under
    /var/cache/flageemonitor-test/agent-bundle/repo-<builder key>, rebuilt when the builder changed)."""
    if given is not None:
        return given
    from tests.fixtures.agent_bundle import built_repository

    print("agent bundle: the tests' cached build (built now if the builder changed) ...", file=sys.stderr)
    return built_repository()


def pyinfra_bin() -> Path:
    return fanout.tool_bin("pyinfra", PYINFRA_VERSION, "pyinfra", "pyinfra")  # type: ignore[no-any-return]


def compile_bytecode(*trees: Path) -> None:
    """Byte-compile each contender's code once, as an installed package is: a run must not pay for
    compiling its sources (this matters where PYTHONDONTWRITEBYTECODE is set)."""
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree)], check=False,
                       capture_output=True)


def pings(fleet: Fleet, grace: float = 60.0) -> tuple[list[Any], int]:
    """(The endpoints whose agent does not answer a real `agent.ping`, asked again until `grace`
    seconds have passed (an agent a contender started without waiting for it gets time to come
    up); how many answered the first time)."""
    from zabbix_utils import Getter

    def answers(ep: Any) -> bool:
        try:
            return str(Getter(host=ep.ip, port=ep.agent_port, timeout=5).get("agent.ping").value) == "1"
        except Exception:
            return False

    deadline = time.monotonic() + grace
    silent = list(fleet.endpoints)
    first: int | None = None
    with ThreadPoolExecutor(32) as pool:
        while True:
            silent = [ep for ep, ok in zip(silent, pool.map(answers, silent), strict=True) if not ok]
            first = len(fleet.endpoints) - len(silent) if first is None else first
            if not silent or time.monotonic() > deadline:
                return silent, first
            time.sleep(2)


def post_mortem(fleet: Fleet, ep: Any) -> str:
    """What a silent endpoint's tree shows: the agent binary, config, pid file and log tail (the
    agent bench fleet keeps each endpoint's tree in <base>/<key>/root, the key in `persona`)."""
    agent = fleet.base / ep.persona / "root" / "ariusmonitor"
    seen = {p: (agent / p).exists() for p in ("zabbix/sbin/zabbix_agentd", "conf/zabbix_agentd.conf",
                                              "logs/zabbix_agentd.pid")}
    log = agent / "logs" / "zabbix_agentd.log"
    tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:]) if log.is_file() else "no log"
    return f"{ep.name} ({ep.ip}:{ep.agent_port}): {seen}; log: {tail}"


LOGS = CACHE / "agent-install-logs"


def logged(name: str, parse: Any) -> tuple[Any, Path]:
    """(`parse` of stdout and stderr together, the stderr log): the contender's output is kept in
    LOGS/<name>.out and LOGS/<name>.err for a look afterwards (pyinfra reports on stderr)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    err = LOGS / f"{name}.err"

    def run(text: str) -> tuple[int, int, str]:
        (LOGS / f"{name}.out").write_text(text)
        result: tuple[int, int, str] = parse(text, err.read_text(errors="replace"))
        return result
    return run, err


def parse_ours(text: str, _err: str) -> tuple[int, int, str]:
    try:
        report = json.loads(text)
    except ValueError:
        return 0, 0, "no JSON report"
    s = report["summary"]
    return s["ok"] + s["changed"], s["failures"], f"changed {s['changed']}, unchanged {s['ok']}"


def parse_ansible(text: str, _err: str) -> tuple[int, int, str]:
    recaps = re.findall(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text)
    bad = sum(1 for r in recaps if int(r[2]) or int(r[3]))
    changed = sum(1 for r in recaps if int(r[1]))
    return len(recaps) - bad, bad, f"hosts with changes {changed}"


def parse_pyinfra(text: str, err: str) -> tuple[int, int, str]:
    """From pyinfra's results table (on stderr): `Grand total  OPS  SUCCESS  ERROR  NO-CHANGE`
    ('-' = 0); counted in operations x hosts, not hosts."""
    match = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text + err)
    if not match:
        return 0, 0, "no results table"
    _total, success, error, unchanged = (0 if v == "-" else int(v) for v in match.groups())
    return success + unchanged, error, f"operations: {success} changed, {unchanged} unchanged, {error} failed"


def write_inputs(fleet: Fleet, repo: Path, forks: int) -> dict[str, Path]:
    base = fleet.base
    ini = ["[fleet]"] + [f"{e.name} ansible_host={e.ip} ansible_port={e.port} agent_port={e.agent_port} "
                         f"tech_name={e.name}" for e in fleet.endpoints]
    ini += ["", "[fleet:vars]", "ansible_user=root", f"ansible_ssh_private_key_file={fleet.client_key}",
            "ansible_python_interpreter=/usr/bin/python3.11", f"repo={repo}",
            "ansible_ssh_common_args='-F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"]
    (base / "ansible.ini").write_text("\n".join(ini) + "\n")
    (base / "ansible.cfg").write_text(f"[defaults]\nforks = {forks}\nhost_key_checking = False\n"
                                      "[ssh_connection]\npipelining = True\n")
    hosts = [(e.ip, {"ssh_port": e.port, "ssh_user": "root", "ssh_key": str(fleet.client_key),
                     "ssh_strict_host_key_checking": "off", "ssh_known_hosts_file": "/dev/null",
                     "agent_port": e.agent_port, "tech_name": e.name}) for e in fleet.endpoints]
    (base / "pyinfra_inventory.py").write_text(f"fleet = {hosts!r}\n")
    return {"ini": base / "ansible.ini", "cfg": base / "ansible.cfg", "pyinv": base / "pyinfra_inventory.py"}


CONTENDERS = ("ours", "pyinfra", "ansible")
# The baseline is measured twice: at the start (no agent installed yet) and right before our
# no-change run (the agents running, the machine's load as it is then); the target ratio uses the
# second, measured under the same conditions as the run it is compared with.
BARE = "bare asyncssh connect+command"
BARE_AGENTS = "bare asyncssh connect+command (agents up)"


@dataclass
class Row:
    """One measured run: its agents answering afterwards, and why its time is not a result
    (`invalid`: a non-zero exit, a failed host, or an agent not answering)."""

    m: Any
    up: int | None
    invalid: str = ""


def judged(m: Any, fleet: Fleet, n: int) -> Row:
    """`m` with the agents counted by a real `agent.ping`; a contender that exits non-zero, reports
    a failure or leaves fewer than `n` agents answering is invalid (and a silent endpoint's tree
    is described on stderr)."""
    silent, first = pings(fleet)
    up = n - len(silent)
    reasons = [f"exit {m.exit_code}"] * bool(m.exit_code) + [f"{m.failed} failed"] * bool(m.failed)
    reasons += [f"{up}/{n} agents answering"] * (up < n)
    row = Row(m, up, "INVALID: " + ", ".join(reasons) if reasons else "")
    print(f"  {m.name}: {m.wall:.1f}s wall, {m.cpu:.1f}s CPU, agents up {up} ({first} at the first ping), "
          f"{m.note} {row.invalid}",
          file=sys.stderr, flush=True)
    for ep in silent[:3]:
        print(f"    silent: {post_mortem(fleet, ep)}", file=sys.stderr, flush=True)
    return row


def selected(only: str | None, skip: str | None) -> list[str]:
    """Contenders from `--only`/`--skip` (comma lists of CONTENDERS)."""
    names = [c for c in (only or ",".join(CONTENDERS)).split(",") if c]
    unknown = [c for c in names + (skip or "").split(",") if c and c not in CONTENDERS]
    if unknown:
        raise SystemExit(f"error: unknown contender {unknown[0]!r} (known: {', '.join(CONTENDERS)})")
    return [c for c in CONTENDERS if c in names and c not in (skip or "").split(",")]


def table(rows: list[Row], n: int, repo: Path) -> None:
    print(f"\nagent install on {n} endpoints (real bundle {repo.name}), {os.cpu_count()} cores\n")
    header = (f"{'contender':42} {'wall s':>7} {'CPU s':>7} {'ms CPU/host':>11} {'peak RSS MB':>11} "
              f"{'ok':>4} {'fail':>4} {'agents up':>9}  notes")
    print(header)
    print("-" * len(header))
    for row in rows:
        m = row.m
        up = "-" if row.up is None else str(row.up)
        timing = (f"{'INVALID':>7} {'-':>7} {'-':>11} {'-':>11}" if row.invalid else
                  f"{m.wall:7.2f} {m.cpu:7.2f} {1000 * m.cpu / n:11.1f} {m.rss_mb:11.1f}")
        print(f"{m.name:42} {timing} {m.ok:4d} {m.failed:4d} {up:>9}  {row.invalid or m.note}"
              + (f" (measured {m.wall:.1f}s; {m.note})" if row.invalid else ""))
    by = {row.m.name: row for row in rows}
    lines = []

    def ratio(label: str, num: str, den: str, target: str) -> None:
        if num in by and den in by:
            bad = [r.m.name for r in (by[num], by[den]) if r.invalid]
            value = "n/a (invalid: " + ", ".join(bad) + ")" if bad else f"{by[num].m.wall / by[den].m.wall:.2f}x"
            lines.append(f"{label}: {value} (target {target})")

    ours_cold, ours_warm = "flageemonitor run pdv_install (cold)", "flageemonitor run pdv_install (no-change)"
    ratio("no-change run / bare connect+command just before it", ours_warm, BARE_AGENTS, "<= 2x")
    ratio("no-change run / bare connect+command at the start", ours_warm, BARE, "<= 2x")
    ratio("cold install: ansible / ours", "ansible-playbook (cold)", ours_cold, ">= 5x")
    ratio("cold install: pyinfra / ours", "pyinfra deploy (cold)", ours_cold, "> 1x")
    print("\n" + "\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--repo", type=Path, default=None, help="bundle repository (default: build one, cached)")
    parser.add_argument("--forks", type=int, default=200, help="Ansible forks and pyinfra parallelism")
    parser.add_argument("--only", metavar="NAMES", help=f"comma list of contenders ({', '.join(CONTENDERS)})")
    parser.add_argument("--skip", metavar="NAMES", help="comma list of contenders to leave out")
    parser.add_argument("--pyinfra-args", default="", help="extra pyinfra arguments (e.g. -v)")
    args = parser.parse_args()
    contenders = selected(args.only, args.skip)
    repo = bundle_repo(args.repo).resolve()
    n = args.hosts
    ansible = fanout.ansible_bin() if "ansible" in contenders else None
    pyinfra = pyinfra_bin() if "pyinfra" in contenders else None
    compile_bytecode(ROOT / "src", Path(sys.prefix) / "lib", *(p.parents[1] / "lib" for p in (ansible, pyinfra) if p))
    print(f"starting {n} agent-capable endpoints ...", file=sys.stderr)
    fleet = start_agent_bench_fleet(n)
    rows: list[Row] = []
    try:
        fleet.write_config(ssh={"timeout": 10, "command_timeout": 120, "host_key_policy": "pin"}, max_threads=n,
                           PARAM_LOCAL_REPO_DIR=str(repo), PARAM_PROXY_IP="127.0.0.1")
        env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(fleet.state_dir), "FLAGEEMONITOR_LOG_LEVEL": "WARNING"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cli = [str(Path(sys.executable).parent / "flageemonitor")]
        common = ["--json", "--config", str(fleet.config_path), "--inventory", str(fleet.inventory_path),
                  "--concurrency", str(n), "--batch", "all"]
        files = write_inputs(fleet, repo, args.forks)

        def reset() -> None:
            """Every endpoint put back as it was; an agent still answering afterwards is reported
            (the next contender's cold run would not start from nothing)."""
            done = subprocess.run([*cli, "run", "pdv_uninstall", "--all", *common], env=env, capture_output=True,
                                  check=False)
            left = n - len(pings(fleet, grace=0)[0])
            if done.returncode or left:
                print(f"  reset: pdv_uninstall exit {done.returncode}, {left} agents still answering",
                      file=sys.stderr, flush=True)

        def contender(name: str, log: str, argv: list[str], cenv: dict[str, str], parse: Any,
                      before_no_change: Any = None) -> None:
            for phase in ("cold", "no-change"):
                if phase == "no-change" and before_no_change is not None:
                    before_no_change()
                parse_log, err = logged(f"{log}-{phase}", parse)
                rows.append(judged(measure(f"{name} ({phase})", argv, cenv, parse_log, stderr_to=err), fleet, n))

        def bare(name: str) -> None:
            m = measure(name, [sys.executable, str(ROOT / "benchmarks" / "fanout" / "bare_asyncssh.py"),
                               str(fleet.inventory_path), "10", str(n)], env, fanout.parse_bare)
            rows.append(Row(m, None, f"INVALID: {m.failed} failed" if m.failed else ""))

        bare(BARE)
        if "ours" in contenders:
            contender("flageemonitor run pdv_install", "flageemonitor", [*cli, "run", "pdv_install", *common], env,
                      parse_ours, before_no_change=lambda: bare(BARE_AGENTS))
        if pyinfra is not None:
            reset()
            argv = [str(pyinfra), str(files["pyinv"]), str(HERE / "pyinfra_deploy.py"), "--yes",
                    "--parallel", str(args.forks), *args.pyinfra_args.split()]
            contender("pyinfra deploy", "pyinfra", argv, {**env, "BENCH_REPO": str(repo)}, parse_pyinfra)
        if ansible is not None:
            reset()
            aenv = {**env, "ANSIBLE_CONFIG": str(files["cfg"]), "ANSIBLE_HOME": str(fleet.base / "ansible"),
                    "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_DEPRECATION_WARNINGS": "False"}
            contender("ansible-playbook", "ansible", [str(ansible.parent / "ansible-playbook"), "-i",
                                                      str(files["ini"]), str(HERE / "playbook.yml")], aenv,
                      parse_ansible)
        reset()
    finally:
        fleet.remove()
    table(rows, n, repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
