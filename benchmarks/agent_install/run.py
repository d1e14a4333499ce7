"""Agent install benchmark: `flageemonitor run pdv_install` vs an Ansible playbook vs a pyinfra
deploy, each installing the real agent bundle on the same fleet of agent-capable endpoints (cold:
nothing installed; then a no-change run), against a bare asyncssh connect+command baseline.

    uv run python benchmarks/agent_install/run.py --hosts 200 [--repo DIR] [--no-ansible] [--no-pyinfra]

Needs root (the sshd fleet, devtools.fleet.start_agent_bench_fleet: per endpoint its own tree,
agent port and Python for Ansible's modules). The bundle repository is built once with
`deploy.agent_bundle.build` into ~/.cache/flageemonitor-bench/agent-repo unless --repo names one.
ansible-core and pyinfra are installed once into their own virtualenvs under
~/.cache/flageemonitor-bench. Between contenders every endpoint is put back as it was with
`flageemonitor run pdv_uninstall --all`. After each cold run the agents are counted with a real
`agent.ping`. Wall time around each child process; CPU (user+sys) and peak RSS from wait4(),
including the processes it waited for (ansible's forks, ssh clients). Our runs use `--batch all`
(one wave, as the other contenders run), not the canary an endpoint-changing action gets by default.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
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
    if given is not None:
        return given
    repo = CACHE / "agent-repo"
    if not (repo / "SHA256SUMS").exists():
        print(f"building the agent bundle into {repo} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "deploy.agent_bundle.build", "--out", str(repo)], cwd=ROOT, check=True)
    return repo


def pyinfra_bin() -> Path:
    return fanout.tool_bin("pyinfra", PYINFRA_VERSION, "pyinfra", "pyinfra")  # type: ignore[no-any-return]


def compile_bytecode(*trees: Path) -> None:
    """Byte-compile each contender's code once, as an installed package is: a run must not pay for
    compiling its sources (this matters where PYTHONDONTWRITEBYTECODE is set)."""
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tree)], check=False,
                       capture_output=True)


def pings(fleet: Fleet) -> int:
    from zabbix_utils import Getter

    def one(ep: Any) -> bool:
        try:
            return str(Getter(host=ep.ip, port=ep.agent_port, timeout=5).get("agent.ping").value) == "1"
        except Exception:
            return False

    with ThreadPoolExecutor(32) as pool:
        return sum(pool.map(one, fleet.endpoints))


LOGS = CACHE / "agent-install-logs"


def logged(name: str, parse: Any) -> Any:
    """`parse`, keeping the contender's output in LOGS/<name>.log for a look afterwards."""
    def run(text: str) -> tuple[int, int, str]:
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / f"{name}.log").write_text(text)
        result: tuple[int, int, str] = parse(text)
        return result
    return run


def parse_ours(text: str) -> tuple[int, int, str]:
    report = json.loads(text)
    s = report["summary"]
    return s["ok"] + s["changed"], s["failures"], f"changed {s['changed']}, unchanged {s['ok']}"


def parse_ansible(text: str) -> tuple[int, int, str]:
    recaps = re.findall(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", text)
    bad = sum(1 for r in recaps if int(r[2]) or int(r[3]))
    changed = sum(1 for r in recaps if int(r[1]))
    return len(recaps) - bad, bad, f"hosts with changes {changed}"


def parse_pyinfra(text: str) -> tuple[int, int, str]:
    """From pyinfra's results table: `Grand total  OPS  SUCCESS  ERROR  NO-CHANGE` ('-' = 0);
    counted in operations x hosts, not hosts."""
    match = re.search(r"Grand total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text)
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


class Results(list[tuple[Any, str]]):
    """Measures in order; each is also printed to stderr as it completes (a long run shows progress)."""

    def append(self, item: tuple[Any, str]) -> None:
        m, up = item
        print(f"  {m.name}: {m.wall:.1f}s wall, {m.cpu:.1f}s CPU, agents up {up}, {m.note}", file=sys.stderr,
              flush=True)
        super().append(item)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--repo", type=Path, default=None, help="bundle repository (default: build one, cached)")
    parser.add_argument("--forks", type=int, default=200, help="Ansible forks and pyinfra parallelism")
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument("--no-pyinfra", action="store_true")
    args = parser.parse_args()
    repo = bundle_repo(args.repo).resolve()
    n = args.hosts
    ansible = None if args.no_ansible else fanout.ansible_bin()
    pyinfra = None if args.no_pyinfra else pyinfra_bin()
    compile_bytecode(ROOT / "src", Path(sys.prefix) / "lib", *(p.parents[1] / "lib" for p in (ansible, pyinfra) if p))
    print(f"starting {n} agent-capable endpoints ...", file=sys.stderr)
    fleet = start_agent_bench_fleet(n)
    results = Results()
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
            subprocess.run([*cli, "run", "pdv_uninstall", "--all", *common], env=env, capture_output=True,
                           check=False)

        bare = measure("bare asyncssh connect+command", [sys.executable, str(ROOT / "benchmarks" / "fanout" /
                                                                             "bare_asyncssh.py"),
                                                          str(fleet.inventory_path), "10", str(n)], env,
                       fanout.parse_bare)
        results.append((bare, "-"))
        for phase in ("cold", "no-change"):
            m = measure(f"flageemonitor run pdv_install ({phase})", [*cli, "run", "pdv_install", *common], env,
                        logged(f"flageemonitor-{phase}", parse_ours))
            results.append((m, str(pings(fleet)) if phase == "cold" else "-"))
        if pyinfra is not None:
            reset()
            penv = {**env, "BENCH_REPO": str(repo)}
            argv = [str(pyinfra), str(files["pyinv"]), str(HERE / "pyinfra_deploy.py"), "--yes",
                    "--parallel", str(args.forks)]
            for phase in ("cold", "no-change"):
                m = measure(f"pyinfra deploy ({phase})", argv, penv, logged(f"pyinfra-{phase}", parse_pyinfra))
                results.append((m, str(pings(fleet)) if phase == "cold" else "-"))
        if ansible is not None:
            reset()
            aenv = {**env, "ANSIBLE_CONFIG": str(files["cfg"]), "ANSIBLE_HOME": str(fleet.base / "ansible"),
                    "ANSIBLE_LOCALHOST_WARNING": "False", "ANSIBLE_DEPRECATION_WARNINGS": "False"}
            playbook = str(ansible.parent / "ansible-playbook")
            for phase in ("cold", "no-change"):
                m = measure(f"ansible-playbook ({phase})", [playbook, "-i", str(files["ini"]),
                                                            str(HERE / "playbook.yml")], aenv,
                            logged(f"ansible-{phase}", parse_ansible))
                results.append((m, str(pings(fleet)) if phase == "cold" else "-"))
        reset()
    finally:
        fleet.remove()

    print(f"\nagent install on {n} endpoints (real bundle {repo.name}), {os.cpu_count()} cores\n")
    header = (f"{'contender':42} {'wall s':>7} {'CPU s':>7} {'ms CPU/host':>11} {'peak RSS MB':>11} "
              f"{'ok':>4} {'fail':>4} {'agents up':>9}  notes")
    print(header)
    print("-" * len(header))
    for m, up in results:
        print(f"{m.name:42} {m.wall:7.2f} {m.cpu:7.2f} {1000 * m.cpu / n:11.1f} {m.rss_mb:11.1f} "
              f"{m.ok:4d} {m.failed:4d} {up:>9}  {m.note}")
    by = {m.name: m for m, _ in results}
    ours_cold, ours_warm = by["flageemonitor run pdv_install (cold)"], by["flageemonitor run pdv_install (no-change)"]
    lines = [f"no-change run: {ours_warm.wall / bare.wall:.2f}x the bare connect+command time (target <= 2x)"]
    if "ansible-playbook (cold)" in by:
        lines.append(f"cold install: ansible / ours = {by['ansible-playbook (cold)'].wall / ours_cold.wall:.1f}x "
                     "(target >= 5x)")
    if "pyinfra deploy (cold)" in by:
        lines.append(f"cold install: pyinfra / ours = {by['pyinfra deploy (cold)'].wall / ours_cold.wall:.1f}x "
                     "(target > 1x)")
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
