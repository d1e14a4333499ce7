"""`scripts/demo`: the whole system on one machine, then everything stopped on exit.

1. the control plane on SQLite, seeded with the demo client and network (`flageemonitor-server demo`),
   its config pointed at the fleet below and scheduling `diagnose_env` every minute;
2. a fleet of real sshd endpoints (the test personas), renamed into the demo network;
3. the proxy daemon: with a container engine (podman + registry + docker CLI, as the e2e suite
   uses) the image is built, pushed to a private local registry and installed by the server's own
   installer (`curl | bash`) into a private host prefix; otherwise `flageemonitor daemon` runs as a
   process.

Ctrl-C (or `--for SECONDS`) removes the containers, stops every process this started, by PID,
and deletes the work directory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
NETWORK = "DEMO"
RUNTIME = "flageemonitor-demo"


def say(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ca_args() -> list[str]:
    """The machine's CA bundle for the image's PyPI step (a TLS-inspecting proxy's CA lives there)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    return ["--ca-bundle", str(bundle)] if bundle.is_file() else []


def engine_available() -> bool:
    tools = ("podman", "runc", "docker-registry", "mmdebstrap", "docker", "curl")
    return os.geteuid() == 0 and all(shutil.which(t) for t in tools)


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.db_url = f"sqlite:///{workdir / 'demo.db'}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server_url = ""
        self.token = ""
        self.uninstall: list[str] = []

    # --- control plane
    def start_server(self) -> None:
        env = {**os.environ, "FLAGEEMONITOR_DATABASE_URL": self.db_url}
        out = subprocess.run(["flageemonitor-server", "demo"], env=env, capture_output=True, text=True, check=True)
        self.token = next(line.strip() for line in out.stdout.splitlines() if line.strip().startswith("fmt_"))
        port = free_port()
        self.server_url = f"http://127.0.0.1:{port}"
        log = (self.workdir / "server.log").open("ab")
        self.procs.append(subprocess.Popen(
            ["flageemonitor-server", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.server_url + "/health", timeout=2).status_code == 200:
                    say(f"control plane up at {self.server_url} (SQLite {self.workdir / 'demo.db'})")
                    return
            time.sleep(0.2)
        raise SystemExit("demo: the control plane did not start; see " + str(self.workdir / "server.log"))

    def set_config(self, inventory_path: str) -> None:
        from flageemonitor.server import migrate
        from flageemonitor.server.core.config import Settings, normalize_database_url
        from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope
        from flageemonitor.server.core.secretbox import SecretBox
        from flageemonitor.server.services import configs

        config: dict[str, Any] = {
            "PARAM_PROVIDER": "arius",
            "TIMEZONE": "America/Sao_Paulo",
            "PARAM_INVENTORY": "file",
            "PARAM_INVENTORY_FILE": inventory_path,
            "PARAM_CRON_ACTIONS": {"diagnose_env": {"cron": "* * * * *", "args": ["--loja", "1"]}},
            "ssh": {"timeout": 5, "command_timeout": 10},
            "max_threads": 20,
        }
        engine = make_engine(normalize_database_url(self.db_url))
        try:
            migrate.upgrade(engine)
            with session_scope(make_sessionmaker(engine)) as s:
                box = SecretBox(Settings(database_url=self.db_url).key_file)  # the server's own default
                configs.store(s, NETWORK, config, "demo", comment="demo fleet", box=box)
        finally:
            engine.dispose()

    # --- fleet
    def write_inventory(self, fleet: Any, path: Path, key_path: str) -> None:
        hosts = []
        for endpoint in fleet.endpoints:
            entry = endpoint.inventory_entry(Path(key_path))
            entry["name"] = entry["name"].replace(fleet.endpoints[0].name.split("-")[0] + "-", NETWORK + "-", 1)
            hosts.append(entry)
        path.write_text(yaml.safe_dump({"hosts": hosts}, sort_keys=False))

    # --- proxy as a process
    def run_process(self, fleet: Any) -> list[str]:
        state = self.workdir / "state"
        state.mkdir()
        self.write_inventory(fleet, state / "inventory.yaml", str(fleet.client_key))
        self.set_config(str(state / "inventory.yaml"))
        env = {**os.environ, "FLAGEEMONITOR_STATE_DIR": str(state), "FLAGEEMONITOR_TOKEN": self.token,
               "FLAGEEMONITOR_API_BASE": self.server_url + "/api/ingest", "FLAGEEMONITOR_REDE": NETWORK,
               "TZ": "America/Sao_Paulo"}
        log = (self.workdir / "daemon.log").open("ab")
        self.procs.append(subprocess.Popen(["flageemonitor", "daemon"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))
        deadline = time.monotonic() + 60
        while not (state / "config_bot.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the daemon fetches its first config from the control plane
        if not (state / "config_bot.json").exists():
            raise SystemExit(f"demo: the daemon got no config; see {self.workdir / 'daemon.log'}")
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith("FLAGEEMONITOR_STATE"))
        return [
            f"{prefix} uv run flageemonitor run diagnose_env --loja 1",
            f"{prefix} uv run flageemonitor status",
            f"tail -f {self.workdir / 'daemon.log'}",
        ]

    # --- proxy in a container, installed by the server's installer
    def run_container(self, fleet: Any, oci: Any) -> list[str]:
        image = f"{oci.registry}/flagee-cloud/flageemonitor-client:stable"  # the channel every network starts on
        say("building the proxy image (first run: base image from the Debian mirror, dependencies from PyPI)")
        with (self.workdir / "build.log").open("wb") as log:
            built = subprocess.run([str(ROOT / "deploy/build-image.sh"), "--engine", "podman", "--tag", image,
                                    "--base", oci.base_image, "--network", "host", "--push", *ca_args()],
                                   env=oci.env, check=False, stdout=log, stderr=subprocess.STDOUT)
        if built.returncode != 0:
            raise SystemExit("demo: the image build failed:\n" + (self.workdir / "build.log").read_text()[-3000:])
        watchtower = f"{oci.registry}/nickfedor/watchtower:1.20.2"
        # Watchtower's image cannot be pulled here: a stand-in that idles under its name
        ctx = self.workdir / "watchtower"
        ctx.mkdir()
        (ctx / "Containerfile").write_text(
            f"FROM {oci.base_image}\n"
            'ENTRYPOINT ["/usr/bin/tini", "--", "sh", "-c", "echo watchtower stand-in: $*; exec sleep infinity", "-"]\n'
        )
        oci.podman("build", "-q", "--format", "docker", "-t", watchtower, str(ctx))
        oci.podman("push", "-q", watchtower)

        prefix = self.workdir / "host"
        state = prefix / "var/lib/flageemonitor"
        state.mkdir(parents=True)
        shutil.copy(fleet.client_key, state / "fleet_key")
        os.chmod(state / "fleet_key", 0o600)
        self.write_inventory(fleet, state / "inventory.yaml", "/flageemonitor/state/fleet_key")
        self.set_config("/flageemonitor/state/inventory.yaml")
        header = shlex.quote(f"X-Bot-Token: {self.token}")
        url = shlex.quote(self.server_url + "/api/bootstrap/install.sh")
        args = [self.token, "--image", image, "--runtime-name", RUNTIME, "--network", "host",
                "--watchtower-image", watchtower, "--prefix", str(prefix)]
        cmd = f"set -o pipefail; curl -fsSL -H {header} {url} | bash -s -- " + " ".join(shlex.quote(a) for a in args)
        say("installing the proxy with the server's installer: curl ... | bash -s -- TOKEN --image ...")
        subprocess.run(["bash", "-c", cmd], env=oci.env, check=True, stdin=subprocess.DEVNULL)
        self.uninstall = ["bash", "-c", f"curl -fsSL -H {header} {url} | bash -s -- --uninstall --purge "
                          f"--prefix {shlex.quote(str(prefix))}"]
        env_line = " ".join(f"{k}={shlex.quote(oci.env[k])}" for k in
                            ("DOCKER_HOST", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF"))
        bin_dir = prefix / "usr/local/bin"
        return [
            f"export {env_line} PATH={bin_dir}:$PATH",
            "flageemonitor-run diagnose_env --loja 1",
            "flageemonitor-logs --tail 30",
            "flageemonitor-watchtower-logs --tail 5",
            "docker ps",
        ]

    def stop(self) -> None:
        from devtools.processes import stop_group

        for proc in reversed(self.procs):
            stop_group(proc)


@contextlib.contextmanager
def maybe_engine(use: bool, workdir: Path) -> Iterator[Any]:
    if not use:
        yield None
        return
    from devtools.oci import start_oci

    with start_oci(workdir / "oci") as oci:
        yield oci


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--process", action="store_true", help="run the proxy as a process even if podman is here")
    parser.add_argument("--for", dest="seconds", type=float, default=None, help="stop after SECONDS (default: Ctrl-C)")
    opts = parser.parse_args(argv)
    container = engine_available() and not opts.process
    if not container and not opts.process:
        say("no container engine (podman, docker-registry, mmdebstrap, docker CLI, root): the proxy runs as a process")

    from devtools.fleet import FleetError, start_persona_fleet
    from devtools.oci import OciError

    workdir = Path(tempfile.mkdtemp(prefix="flageemonitor-demo-"))
    demo = Demo(workdir)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    fleet = None
    try:
        with maybe_engine(container, workdir) as oci:
            try:
                demo.start_server()
                try:
                    fleet = start_persona_fleet()
                except FleetError as exc:
                    raise SystemExit(f"demo: the sshd fleet could not start: {exc}") from None
                say(f"{len(fleet.endpoints)} sshd endpoints up (personas: Ubuntu, Mint, Slackware 13, 32-bit, ...)")
                tries = demo.run_container(fleet, oci) if oci is not None else demo.run_process(fleet)
                header = shlex.quote(f"X-Bot-Token: {demo.token}")
                print("\nFlageeMonitor demo is running. Try:\n", flush=True)
                for line in tries:
                    print(f"  {line}")
                print(f"  curl -H {header} {demo.server_url}/api/ingest/bot/config   # the config the proxy uses")
                print(f"  curl {demo.server_url}/health")
                print("\ndiagnose_env runs every minute on the demo network's store 1. Ctrl-C stops everything.\n",
                      flush=True)
                deadline = None if opts.seconds is None else time.monotonic() + opts.seconds
                while not stopping and (deadline is None or time.monotonic() < deadline):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            finally:
                say("stopping")
                if oci is not None and demo.uninstall:
                    subprocess.run(demo.uninstall, env=oci.env, stdin=subprocess.DEVNULL, check=False,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                demo.stop()
                if fleet is not None:
                    fleet.remove()
    except KeyboardInterrupt:
        pass
    except OciError as exc:
        say(f"the container engine could not start (try --process): {exc}")
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        say("stopped; nothing left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
