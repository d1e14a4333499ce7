"""The e2e scene: proxy images in a local registry, a control plane, a real sshd endpoint, and a
host prefix where the installer is run exactly as a user runs it (curl | bash)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import Fleet
from devtools.oci import Oci

from tests.fixtures.server import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "fm-e2e"
WATCHTOWER_TAG = "nickfedor/watchtower:1.20.2"

# Watchtower's own image cannot be pulled here: this stand-in runs under the configured name,
# prints its arguments and whether the mounted docker socket answers, then idles.
STANDIN_SCRIPT = textwrap.dedent(
    """\
    #!/bin/sh
    for a in "$@"; do echo "watchtower-standin arg: $a"; done
    echo "watchtower-standin DOCKER_CONFIG=${DOCKER_CONFIG:-}"
    if curl -sf --unix-socket /var/run/docker.sock http://d/_ping >/dev/null; then
        echo "watchtower-standin docker socket: ok"
    else
        echo "watchtower-standin docker socket: unreachable"
    fi
    exec sleep infinity
    """
)


@dataclass
class Scene:
    oci: Oci
    server: ControlPlane
    fleet: Fleet
    image: str
    watchtower_image: str
    prefix: Path
    workdir: Path
    inventory_entry: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def bin(self) -> Path:
        return self.prefix / "usr/local/bin"

    @property
    def env_file(self) -> Path:
        return self.prefix / "etc/flageemonitor/flageemonitor.env"

    @property
    def state(self) -> Path:
        return self.prefix / "var/lib/flageemonitor"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(self.oci.env)
        env.update(extra)
        return env

    def build(self, version: str, *, broken: bool = False) -> str:
        """Build a proxy image and push it under the one tag; returns its image id.

        It is built under a tag of its own and pushed from there: the host's engine shares this
        storage and its pulls (a hold polls every few seconds) move the local `self.image` tag."""
        local = f"localhost/fm-e2e-build:{version}"
        if broken:
            ctx = self.workdir / f"broken-{version}"
            ctx.mkdir(exist_ok=True)
            (ctx / "Containerfile").write_text(
                f"FROM {self.image}\n"
                f'LABEL org.opencontainers.image.version="{version}"\n'
                'HEALTHCHECK --interval=5s --timeout=5s --retries=1 CMD ["sh", "-c", "exit 1"]\n'
            )
            self.oci.podman("build", "-q", "--format", "docker", "-t", local, str(ctx))
        else:
            proc = subprocess.run(
                [str(ROOT / "deploy/build-image.sh"), "--engine", "podman", "--tag", local,
                 "--base", self.oci.base_image, "--version", version, "--network", "host",
                 *host_ca_bundle()],
                env=self.oci.env, capture_output=True, text=True, timeout=900, check=False,
            )
            assert proc.returncode == 0, proc.stderr[-4000:]
        self.oci.podman("push", "-q", local, self.image)
        image_id = self.oci.image_id(local)
        self.oci.podman("tag", local, self.image)
        self.versions[image_id] = version
        return image_id

    def fetch_installer(self, path: Path) -> None:
        cmd = (f"curl -fsSL -H {shlex.quote('X-Bot-Token: ' + self.server.token)} "
               f"{shlex.quote(self.server.url + '/api/bootstrap/install.sh')} -o {shlex.quote(str(path))}")
        subprocess.run(["bash", "-c", cmd], check=True, timeout=60)

    def install(self, *extra: str, token: str | None = None, prefix: Path | None = None,
                timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """`curl -fsSL -H "X-Bot-Token: T" SERVER/api/bootstrap/install.sh | bash -s -- T [options]`"""
        token = token if token is not None else self.server.token
        args = [token, "--image", self.image, "--runtime-name", RUNTIME, "--network", "host",
                "--watchtower-interval", "3600",
                "--prefix", str(prefix or self.prefix), *extra]
        cmd = (f"set -o pipefail; curl -fsSL -H {shlex.quote('X-Bot-Token: ' + self.server.token)} "
               f"{shlex.quote(self.server.url + '/api/bootstrap/install.sh')} | bash -s -- "
               + " ".join(shlex.quote(a) for a in args))
        return self.sh(cmd, timeout=timeout, **extra_env)

    def sh(self, cmd: str, *, timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", cmd], env=self.env(**extra_env), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def wrapper(self, name: str, *args: str, timeout: float = 600,
                **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / name), *args], env=self.env(**extra_env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)

    def inspect(self, name: str) -> dict[str, Any]:
        out = self.oci.docker("inspect", name).stdout
        return json.loads(out)[0]  # type: ignore[no-any-return]

    def running_version(self) -> str:
        """The version the runtime container runs; "" while no container has the name (a swap
        removes the old container, then renames the new one)."""
        proc = self.oci.docker("inspect", RUNTIME, check=False)
        if proc.returncode != 0:
            return ""
        return self.versions.get(json.loads(proc.stdout)[0]["Image"].removeprefix("sha256:"), "?")

    def status(self) -> dict[str, Any]:
        out = self.oci.docker("exec", RUNTIME, "flageemonitor", "status", "--json").stdout
        return json.loads(out)  # type: ignore[no-any-return]


def host_ca_bundle() -> list[str]:
    """The machine's CA bundle for the image's PyPI step (a TLS-inspecting proxy's CA lives there)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    return ["--ca-bundle", str(bundle)] if bundle.is_file() else []


def _standin(oci: Oci, workdir: Path, ref: str) -> None:
    ctx = workdir / "watchtower-standin"
    ctx.mkdir()
    (ctx / "standin.sh").write_text(STANDIN_SCRIPT)
    (ctx / "Containerfile").write_text(
        f"FROM {oci.base_image}\nCOPY standin.sh /standin.sh\nRUN chmod 755 /standin.sh\n"
        'ENTRYPOINT ["/usr/bin/tini", "--", "/standin.sh"]\n'
    )
    oci.podman("build", "-q", "--format", "docker", "-t", ref, str(ctx))
    oci.podman("push", "-q", ref)


@pytest.fixture(scope="module")
def scene(oci: Oci, persona_fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    workdir = tmp_path_factory.mktemp("e2e")
    image = f"{oci.registry}/flagee-cloud/flageemonitor-client:stable"
    watchtower_image = f"{oci.registry}/{WATCHTOWER_TAG}"
    _standin(oci, workdir, watchtower_image)

    # one real endpoint, reached from the container over the host network (password auth)
    endpoint = next(e for e in persona_fleet.endpoints if e.persona == "ubuntu2204")
    config = {
        "PARAM_PROVIDER": "arius",
        "TIMEZONE": "America/Sao_Paulo",
        "PARAM_INVENTORY": "file",
        "PARAM_INVENTORY_FILE": "/flageemonitor/state/inventory.yaml",
        "ssh": {"timeout": 5, "command_timeout": 30},
    }
    server = ControlPlane(
        workdir / "server", config=config, rede="FLEET",
        env={"FLAGEEMONITOR_WATCHTOWER_IMAGE": watchtower_image},
    )
    server.start()
    prefix = workdir / "host"
    s = Scene(oci=oci, server=server, fleet=persona_fleet, image=image, watchtower_image=watchtower_image,
              prefix=prefix, workdir=workdir, inventory_entry=endpoint.inventory_entry(persona_fleet.client_key))
    try:
        yield s
    finally:
        server.stop()
        # the runtime containers live in the session's private storage: removed with it
        for name in (f"{RUNTIME}-watchtower", f"{RUNTIME}-next", RUNTIME):
            oci.docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def host_paths_before() -> dict[str, bool]:
    """The machine's real paths the installer would use without --prefix."""
    return {p: os.path.exists(p) for p in ("/etc/flageemonitor", "/var/lib/flageemonitor",
                                          "/usr/local/bin/flageemonitor-run")}
