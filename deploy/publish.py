"""Publish the proxy image: build it with the runtime protected by PyArmor, check it, then push.

    uv run python -m deploy.publish --tag REGISTRY/flagee-cloud/flageemonitor-client:1.2.3 \\
        [--base IMAGE] [--engine podman|docker] [--network host] [--ca-bundle FILE] [--version V] \\
        [--no-build] [--no-push]

The gate refuses to push (exit 1, one line per reason, nothing pushed) when
- PyArmor cannot protect a module (the build fails; the module is named, e.g. one over the
  trial licence's size limit);
- the image's runtime holds plain product source: a `.py` of the `flageemonitor` package without
  PyArmor's marker, compiled bytecode of one, or no PyArmor runtime beside it;
- the smoke tests fail: the daemon starts and reports healthy, `health` answers, and
  `run diagnose_env` reaches a real sshd persona (devtools.fleet, so this runs as root on a
  development or CI machine, never on a customer host).
`--no-build` checks (and pushes) an image built before. Unprotected images
(`deploy/build-image.sh` without `--protect`) stay the default for development.
Exit codes: 0 published (or checked, with --no-push), 1 refused, 2 usage.

    uv run python -m deploy.publish promote --image REGISTRY/flagee-cloud/flageemonitor-client \
        [--from canary] [--to stable] [--digest sha256:…] [--no-latest]

retags, by digest and without a rebuild, what `--from` points to (`deploy/promote.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_PYTHON = "/flageemonitor/runtime/bin/python"
RUNTIME_UID = 10001
SMOKE_PERSONA = "ubuntu2204"

# Run inside the image, as root: every product source that is not protected.
SCAN = r"""
import importlib.util, json, os
spec = importlib.util.find_spec("flageemonitor")
pkg = list(spec.submodule_search_locations)[0]
site = os.path.dirname(pkg)
plain, protected = [], 0
for base, dirs, files in os.walk(pkg):
    for name in files:
        path = os.path.join(base, name)
        rel = os.path.relpath(path, site)
        if name.endswith(".pyc"):
            plain.append(rel)
        elif name.endswith(".py"):
            with open(path, "rb") as f:
                if b"__pyarmor__" in f.read():
                    protected += 1
                else:
                    plain.append(rel)
runtime = [d for d in os.listdir(site) if d.startswith("pyarmor_runtime_")]
print(json.dumps({"plain": sorted(plain), "protected": protected, "runtime": runtime}))
"""


class Refused(RuntimeError):
    """The image must not be published; the message says why."""


def say(msg: str) -> None:
    print(f"publish: {msg}", file=sys.stderr, flush=True)


def engine_cmd(engine: str, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    if check and proc.returncode != 0:
        raise Refused(f"{engine} {args[0]} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return proc


def pyarmor_failures(log: str) -> list[str]:
    """What PyArmor could not do, each error named by the module it was obfuscating."""
    current, found = "", []
    for line in log.splitlines():
        obfuscating = re.search(r"obfuscating file (\S+)", line)
        if obfuscating:
            current = obfuscating.group(1)
        elif re.search(r"\bERROR\b", line):
            message = line.split("ERROR", 1)[1].strip()
            found.append(f"{current}: {message}" if current else message)
    return found


def build(args: argparse.Namespace) -> None:
    argv = [str(ROOT / "deploy/build-image.sh"), "--protect", "--tag", args.tag, "--engine", args.engine]
    for option in ("base", "version", "network", "ca_bundle"):
        value = getattr(args, option)
        if value:
            argv += [f"--{option.replace('_', '-')}", value]
    say(f"building {args.tag} with the runtime protected by PyArmor")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        if "PYARMOR FAILED" in proc.stderr:
            lines = pyarmor_failures(proc.stderr) or [proc.stderr.strip()[-500:]]
            raise Refused("PyArmor could not protect the runtime: " + " | ".join(lines))
        raise Refused(f"the build failed: {proc.stderr.strip()[-800:]}")


def plain_sources(engine: str, ref: str) -> list[str]:
    """Product sources in the image's runtime that are not protected (empty: all protected)."""
    proc = engine_cmd(engine, "run", "--rm", "--user", "0", "--network", "none", "--entrypoint", RUNTIME_PYTHON,
                      ref, "-c", SCAN, timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    plain: list[str] = report["plain"]
    if not report["runtime"]:
        plain.append("(no pyarmor_runtime package beside flageemonitor)")
    return plain


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(1)
    raise Refused(f"smoke test: timed out waiting for {what}")


def smoke(engine: str, ref: str) -> None:
    """The daemon starts healthy on a local config; `run diagnose_env` reaches a real persona."""
    from devtools.fleet import PERSONAS, REDE, start_persona_fleet

    persona = tuple(p for p in PERSONAS if p.key == SMOKE_PERSONA)
    fleet = start_persona_fleet(persona)
    state = Path(tempfile.mkdtemp(prefix="flageemonitor-publish-"))
    name = f"flageemonitor-publish-smoke-{os.getpid()}"
    try:
        endpoint = fleet.endpoints[0]
        (state / "inventory.yaml").write_text(yaml.safe_dump({"hosts": [endpoint.inventory_entry(fleet.client_key)]}))
        (state / "config_bot.json").write_text(json.dumps({
            "PARAM_REDE": REDE, "PARAM_PROVIDER": "arius", "TIMEZONE": "America/Sao_Paulo",
            "PARAM_INVENTORY": "file", "PARAM_INVENTORY_FILE": "/flageemonitor/state/inventory.yaml",
            "ssh": {"timeout": 5, "command_timeout": 30}}))
        for path in (state, *state.iterdir()):
            os.chown(path, RUNTIME_UID, RUNTIME_UID)
        engine_cmd(engine, "run", "--detach", "--name", name, "--network", "host", "-e",
                   "FLAGEEMONITOR_CONFIG_REFRESH=false", "-v", f"{state}:/flageemonitor/state", ref)

        def healthy() -> bool:
            return engine_cmd(engine, "exec", name, "flageemonitor", "health", check=False).returncode == 0

        wait_until(healthy, 120, "the daemon to report healthy")
        say("smoke: daemon started, health ok")
        run = engine_cmd(engine, "exec", name, "flageemonitor", "run", "diagnose_env", "--json", check=False,
                         timeout=180)
        try:
            hosts = json.loads(run.stdout)["hosts"]
        except (ValueError, KeyError):
            raise Refused(f"smoke test: run diagnose_env printed no report: {run.stderr.strip()[-500:]}") from None
        if [h.get("host") for h in hosts] != [endpoint.name] or (hosts[0].get("facts") or {}).get("distro") != "ubuntu":
            raise Refused(f"smoke test: run diagnose_env did not reach {endpoint.name}: {run.stdout[-800:]}")
        say(f"smoke: run diagnose_env reached {endpoint.name} ({SMOKE_PERSONA})")
    finally:
        engine_cmd(engine, "rm", "-f", name, check=False)
        fleet.remove()
        shutil.rmtree(state, ignore_errors=True)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.publish", description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="the image reference to build and push")
    p.add_argument("--engine", default="podman" if shutil.which("podman") else "docker")
    p.add_argument("--base", help="base image (default: the Dockerfile's)")
    p.add_argument("--version", help="version label (default: pyproject's)")
    p.add_argument("--network", help="build network, e.g. host")
    p.add_argument("--ca-bundle", help="CA bundle for PyPI during the build")
    p.add_argument("--no-build", action="store_true", help="check an image built before")
    p.add_argument("--no-push", action="store_true", help="check only")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["promote"]:
        from deploy import promote

        return promote.main(argv[1:])
    args = parse(argv)
    try:
        if not args.no_build:
            build(args)
        plain = plain_sources(args.engine, args.tag)
        if plain:
            shown = ", ".join(plain[:8]) + (f" and {len(plain) - 8} more" if len(plain) > 8 else "")
            raise Refused(f"the image's runtime holds plain product source ({len(plain)} files): {shown}")
        say("every product module is protected by PyArmor")
        smoke(args.engine, args.tag)
        if args.no_push:
            say(f"checked {args.tag}; not pushed (--no-push)")
            return 0
        engine_cmd(args.engine, "push", args.tag, timeout=900)
    except Refused as exc:
        say(f"REFUSED: {exc}; nothing was pushed")
        return 1
    say(f"published {args.tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
