"""A real container engine and registry, private to one test session or demo.

`start_oci(workdir)` gives:
- podman with its own `containers.conf` / `storage.conf` / `registries.conf` under a temporary
  directory (nothing shared with the machine's podman: its own storage, run and tmp dirs);
- a local OCI registry (Debian's `docker-registry`) on a free 127.0.0.1 port;
- `podman system service` on a unix socket, so the real `docker` CLI drives it through
  `DOCKER_HOST` (`oci.env` carries every variable a subprocess needs);
- a Debian bookworm base image made with mmdebstrap, cached as a tarball under
  `$FLAGEEMONITOR_TEST_CACHE` (default /var/cache/flageemonitor-test) between runs.

Podman needs on this kind of host: `default_ulimits = []` (raising RLIMIT_NOFILE is refused),
`runtime = "runc"` (crun rejects hybrid cgroups), and a short `exit_command_delay` so the conmon
of a `docker exec` does not linger. Teardown removes only what this session created.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
# What the proxy runtime needs from the OS (the Dockerfile installs the same set if missing).
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "openssh-client", "tzdata", "curl", "tini")
BASE_TAG = "localhost/flageemonitor-test-base:bookworm"
REQUIRED_TOOLS = ("podman", "runc", "docker-registry", "mmdebstrap", "docker", "curl")


class OciError(RuntimeError):
    """The engine or the registry could not start; the message says why (log tail included)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cache_dir() -> Path:
    return Path(os.environ.get("FLAGEEMONITOR_TEST_CACHE", "/var/cache/flageemonitor-test"))


def mmdebstrap_args(target: Path, packages: Sequence[str] = BASE_PACKAGES, *, variant: str = "essential",
                    hooks: Sequence[str] = ()) -> list[str]:
    """A bookworm rootfs tarball with `packages`; each of `hooks` is a customize hook ("$1" is the tree)."""
    return [
        "mmdebstrap",
        f"--variant={variant}",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--include=" + ",".join(packages),
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        *(f"--customize-hook={hook}" for hook in hooks),
        '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*',
        BASE_SUITE,
        str(target),
        BASE_MIRROR,
    ]


def rootfs_tarball(name: str, args: Callable[[Path], list[str]]) -> Path:
    """The cached rootfs that `args(target)` builds, keyed by its recipe; built when missing."""
    recipe = "\n".join(args(Path("TARGET")))
    key = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    target = cache_dir() / f"{name}-{BASE_SUITE}-{key}.tar"
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}.tar")
    proc = subprocess.run(args(partial), capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise OciError(f"mmdebstrap could not build the {name} rootfs (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    partial.replace(target)
    return target


def base_tarball() -> Path:
    """The cached base rootfs; built with mmdebstrap when missing (about 30 s)."""
    return rootfs_tarball("base", mmdebstrap_args)


@dataclass
class Oci:
    """A private podman + registry + docker-compatible socket."""

    workdir: Path
    registry: str
    socket_path: Path
    env: dict[str, str]
    base_image: str = BASE_TAG
    pids: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket_path}"

    def podman(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self._run(["podman", *args], check=check, timeout=timeout)

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self._run(["docker", *args], check=check, timeout=timeout)

    def _run(self, argv: Sequence[str], *, check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def image_id(self, ref: str) -> str:
        return self.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip().removeprefix("sha256:")

    def container_names(self) -> list[str]:
        out = self.docker("ps", "-a", "--format", "{{.Names}}").stdout
        return sorted(line for line in out.splitlines() if line)


def _write_config(w: Path, registry: str) -> dict[str, str]:
    (w / "containers.conf").write_text(
        "[containers]\n"
        "default_ulimits = []\n"
        "[engine]\n"
        'runtime = "runc"\n'
        f'tmp_dir = "{w}/tmp"\n'
        "exit_command_delay = 2\n"
        "[network]\n"
        f'network_config_dir = "{w}/networks"\n'
    )
    (w / "registries.conf").write_text(
        "unqualified-search-registries = []\n"
        + (f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n' if registry else "")
    )
    (w / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{w}/storage"\nrunroot = "{w}/run"\n')
    env = dict(os.environ)
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "CONTAINER_HOST"):
        env.pop(name, None)
    env.update(
        CONTAINERS_CONF=str(w / "containers.conf"),
        CONTAINERS_REGISTRIES_CONF=str(w / "registries.conf"),
        CONTAINERS_STORAGE_CONF=str(w / "storage.conf"),
        DOCKER_CONFIG=str(w / "docker-client"),
    )
    return env


def _wait_for(probe: list[str], what: str, log: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise OciError(f"{what} did not come up; log:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def start_oci(workdir: Path) -> Iterator[Oci]:
    """Start registry + podman service in `workdir`; tear down everything on exit."""
    oci = _private_podman(workdir, REQUIRED_TOOLS, f"127.0.0.1:{free_port()}")
    registry = oci.registry
    for sub in ("registry", "logs"):
        (workdir / sub).mkdir(exist_ok=True)
    try:
        (workdir / "registry.yml").write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage:\n  filesystem: {{rootdirectory: {workdir}/registry}}\n  delete: {{enabled: true}}\n"
            f"http: {{addr: {registry}}}\n"
        )
        reg_log = workdir / "logs" / "registry.log"
        with reg_log.open("wb") as out:
            reg = subprocess.Popen(
                ["docker-registry", "serve", str(workdir / "registry.yml")], stdout=out, stderr=subprocess.STDOUT
            )
        oci.pids.append(reg)
        _wait_for(["curl", "-sf", f"http://{registry}/v2/"], "docker-registry", reg_log, reg)

        svc_log = workdir / "logs" / "podman-service.log"
        with svc_log.open("wb") as out:
            svc = subprocess.Popen(
                ["podman", "system", "service", "--time=0", oci.docker_host],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=oci.env,
            )
        oci.pids.append(svc)
        ping = ["curl", "-sf", "--unix-socket", str(oci.socket_path), "http://d/_ping"]
        _wait_for(ping, "podman system service", svc_log, svc)
        oci.env["DOCKER_HOST"] = oci.docker_host

        tarball = base_tarball()
        if oci.podman("image", "exists", BASE_TAG, check=False).returncode != 0:
            oci.podman(
                "import",
                "-q",
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--change",
                'CMD ["/bin/bash"]',
                str(tarball),
                BASE_TAG,
            )
        yield oci
    finally:
        _teardown(oci)


@contextlib.contextmanager
def start_podman(workdir: Path) -> Iterator[Oci]:
    """Podman alone (its own storage, no registry, no service) in `workdir`; torn down on exit."""
    oci = _private_podman(workdir, ("podman", "runc", "mmdebstrap"), registry="")
    try:
        yield oci
    finally:
        _teardown(oci)


def _private_podman(workdir: Path, tools: Sequence[str], registry: str) -> Oci:
    """A podman configured to use only `workdir` (and `registry`, when given); nothing started."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise OciError(f"container tools missing: {', '.join(missing)} (run scripts/setup.sh as root)")
    if os.geteuid() != 0:
        raise OciError("the container suites need root (rootful podman with a private storage)")
    for sub in ("tmp", "networks", "docker-client"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    (workdir / "docker-client" / "config.json").write_text('{"auths": {}}\n')
    return Oci(workdir=workdir, registry=registry, socket_path=workdir / "podman.sock",
               env=_write_config(workdir, registry))


def _teardown(oci: Oci) -> None:
    # Everything in this private storage belongs to this session.
    ids = oci.podman("ps", "-aq", check=False).stdout.split()
    if ids:
        oci.podman("rm", "-f", "-t", "0", *ids, check=False)
    oci.podman("volume", "prune", "-f", check=False)
    for proc in reversed(oci.pids):
        _stop(proc)
    deadline = time.monotonic() + 10
    marker = f"--exit-command-arg {oci.workdir}/storage"
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", "--", marker], capture_output=True).returncode != 0:
            break
        time.sleep(0.3)
    oci.podman("system", "reset", "-f", check=False)
    oci.socket_path.unlink(missing_ok=True)
    shutil.rmtree(oci.workdir, ignore_errors=True)

