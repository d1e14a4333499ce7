"""Image channels end to end: two networks of one control plane, each installed by the server's
installer on its own host prefix, on podman + a local registry + the docker CLI. A stable network
stays on v1 while a canary network picks up v2; `publish promote` moves canary's digest to stable
without a rebuild; pinning rolls a network back with nothing run on the host (the daemon refreshes
its config, `<runtime>-channel` moves the runtime); Watchtower never moves a pinned network. The
tests run in order on the same hosts.

Watchtower's image cannot be pulled here (the scene runs a stand-in under its name), so what it
would update is read the way it selects containers: `--label-enable --scope <runtime>` means the
containers labelled `com.centurylinklabs.watchtower.enable=true` and `...scope=<runtime>`."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flageemonitor.deploy.host.specs import REF_LABEL, WATCHTOWER_ENABLE, WATCHTOWER_SCOPE
from flageemonitor.server.services import networks, tokens
from tests.e2e.conftest import ROOT, Scene
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STABLE_NET, CANARY_NET = "FLEET", "EARLY"
STABLE_RT, CANARY_RT = "fm-ch-stable", "fm-ch-canary"
V1_LOCAL = "localhost/fm-channels-v1:base"
MANIFEST_ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
                   "application/vnd.docker.distribution.manifest.v2+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json")
# the daemon refreshes its config every minute here (hourly by default)
CONFIG = {
    "PARAM_PROVIDER": "arius",
    "TIMEZONE": "America/Sao_Paulo",
    "PARAM_INVENTORY": "file",
    "PARAM_INVENTORY_FILE": "/flageemonitor/state/inventory.yaml",
    "PARAM_CRON_ACTIONS": {"config_refresh": "* * * * *"},
}


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    wait_until(predicate, timeout, what, interval=1)  # each look runs the engine's CLI


class Hosts:
    """The two installed hosts and the images published for them."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.repo = scene.image.rsplit(":", 1)[0]
        self.tokens: dict[str, str] = {}
        self.prefixes = {STABLE_RT: scene.prefix, CANARY_RT: scene.workdir / "host-canary"}

    def registry_digest(self, tag: str) -> str:
        name = self.repo.split("/", 1)[1]
        request = urllib.request.Request(f"http://{self.scene.oci.registry}/v2/{name}/manifests/{tag}",
                                         method="HEAD", headers={"Accept": MANIFEST_ACCEPT})
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - the scene's loopback registry
            return str(r.headers["Docker-Content-Digest"])

    def publish(self, version: str, *tags: str) -> str:
        """A release derived from v1 (a label differs: another image, no full build), pushed under `tags`."""
        ctx = self.scene.workdir / f"release-{version}"
        ctx.mkdir()
        (ctx / "Containerfile").write_text(f'FROM {V1_LOCAL}\nLABEL org.opencontainers.image.version="{version}"\n')
        local = f"localhost/fm-channels-release:{version}"
        self.scene.oci.podman("build", "-q", "--format", "docker", "-t", local, str(ctx))
        image_id = self.scene.oci.image_id(local)
        self.scene.versions[image_id] = version
        for tag in tags:
            self.scene.oci.podman("push", "-q", local, f"{self.repo}:{tag}")
        return image_id

    def promote(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "deploy.publish", "promote", "--image", self.repo, *args],
                              cwd=ROOT, env=self.scene.oci.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL, check=False)

    def install(self, runtime: str, token: str) -> None:
        q = shlex.quote
        header = q(f"X-Bot-Token: {token}")
        url = q(self.scene.server.url + "/api/bootstrap/install.sh")
        args = [token, "--image", self.scene.image, "--runtime-name", runtime, "--network", "host",
                "--watchtower-interval", "3600", "--prefix", str(self.prefixes[runtime])]
        proc = self.scene.sh(f"set -o pipefail; curl -fsSL -H {header} {url} | bash -s -- "
                             + " ".join(q(a) for a in args), FLAGEEMONITOR_CHANNEL_INTERVAL="2")
        assert proc.returncode == 0, proc.stderr[-5000:]

    def wrapper(self, runtime: str, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        path = self.prefixes[runtime] / "usr/local/bin" / name
        return subprocess.run([str(path), *args], env=self.scene.env(FLAGEEMONITOR_CHANNEL_INTERVAL="2"),
                              capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)

    def version(self, runtime: str) -> str:
        """The version `runtime` runs; "" while a swap has removed the old container and not yet
        renamed the new one."""
        proc = self.scene.oci.docker("inspect", runtime, check=False)
        if proc.returncode != 0:
            return ""
        image = json.loads(proc.stdout)[0]["Image"].removeprefix("sha256:")
        return self.scene.versions.get(image, "?")

    def watchtower_would_update(self, runtime: str) -> list[str]:
        out = self.scene.oci.docker("ps", "--format", "{{.Names}}", "--filter", f"label={WATCHTOWER_ENABLE}=true",
                                    "--filter", f"label={WATCHTOWER_SCOPE}={runtime}").stdout
        return out.split()

    def set_channel(self, network: str, channel: str) -> str:
        proc = self.scene.server.admin("network", "channel", network, channel)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture(scope="module")
def hosts(scene: Scene) -> Iterator[Hosts]:
    h = Hosts(scene)
    scene.server.set_config(CONFIG)
    with scene.server.session() as s:
        networks.add(s, scene.server.client, CANARY_NET, "test", provider="arius", timezone="America/Sao_Paulo")
        h.tokens[CANARY_NET] = tokens.issue(s, scene.server.client, "test", networks=[CANARY_NET])[0]
    scene.server.set_config(CONFIG, network=CANARY_NET)
    h.tokens[STABLE_NET] = scene.server.token
    yield h
    for name in scene.oci.container_names():  # whatever a failed test left behind
        if name.startswith("fm-ch-"):
            scene.oci.docker("rm", "-f", name, check=False)


def test_a_canary_network_picks_up_v2_while_a_stable_network_stays_on_v1(hosts: Hosts) -> None:
    scene = hosts.scene
    v1 = scene.build("1.0.0")  # the real image, pushed as :stable
    scene.oci.podman("tag", v1, V1_LOCAL)
    for tag in ("canary", "1.0.0"):
        proc = hosts.promote("--from", "stable", "--to", tag)
        assert proc.returncode == 0, proc.stderr
    assert hosts.registry_digest("1.0.0") == hosts.registry_digest("stable") == hosts.registry_digest("canary")
    assert "stable -> canary" in hosts.set_channel(CANARY_NET, "canary")

    hosts.install(STABLE_RT, hosts.tokens[STABLE_NET])
    hosts.install(CANARY_RT, hosts.tokens[CANARY_NET])
    for runtime, tag in ((STABLE_RT, "stable"), (CANARY_RT, "canary")):
        rt = scene.inspect(runtime)
        assert hosts.version(runtime) == "1.0.0"
        assert rt["Config"]["Image"] == f"{hosts.repo}:{tag}"  # Watchtower follows this tag
        assert rt["Config"]["Labels"][WATCHTOWER_ENABLE] == "true"
        assert hosts.watchtower_would_update(runtime) == [runtime]
        follower = scene.inspect(f"{runtime}-channel")
        assert follower["State"]["Running"] and follower["HostConfig"]["NetworkMode"] == "none"
    config = json.loads((hosts.prefixes[CANARY_RT] / "var/lib/flageemonitor/config_bot.json").read_text())
    assert (config["PARAM_IMAGE_CHANNEL"], config["PARAM_IMAGE_TAG"]) == ("canary", "canary")

    hosts.publish("2.0.0", "canary")
    stable = hosts.wrapper(STABLE_RT, "flageemonitor-update-image")
    assert stable.returncode == 0 and "runtime unchanged" in stable.stderr, stable.stderr
    canary = hosts.wrapper(CANARY_RT, "flageemonitor-update-image")
    assert canary.returncode == 0 and "channel canary" in canary.stderr, canary.stderr
    assert (hosts.version(STABLE_RT), hosts.version(CANARY_RT)) == ("1.0.0", "2.0.0")


def test_promote_moves_the_canary_digest_to_stable_without_a_rebuild(hosts: Hosts) -> None:
    canary, stable = hosts.registry_digest("canary"), hosts.registry_digest("stable")
    assert canary != stable
    wrong = "sha256:" + "0" * 64
    refused = hosts.promote("--digest", wrong)
    assert refused.returncode == 1 and f"canary points to {canary} now, not {wrong}" in refused.stderr
    assert hosts.registry_digest("stable") == stable  # nothing moved
    missing = hosts.promote("--from", "no-such-tag")
    assert missing.returncode == 1 and "does not exist" in missing.stderr

    proc = hosts.promote("--digest", canary)
    assert proc.returncode == 0, proc.stderr
    assert f"@{canary} from canary to stable, latest (no rebuild)" in proc.stderr
    assert hosts.registry_digest("stable") == hosts.registry_digest("latest") == canary
    again = hosts.promote("--digest", canary)
    assert again.returncode == 0 and "already" in again.stderr

    proc = hosts.wrapper(STABLE_RT, "flageemonitor-update-image")
    assert proc.returncode == 0, proc.stderr
    assert hosts.version(STABLE_RT) == "2.0.0"


def test_pinning_rolls_a_network_back_with_nothing_run_on_the_host(hosts: Hosts) -> None:
    scene = hosts.scene
    v1_digest = hosts.registry_digest("1.0.0")
    assert "stable -> pinned to 1.0.0" in hosts.set_channel(STABLE_NET, "1.0.0")
    # the daemon's minute refresh writes the new config; the channel follower moves the runtime
    wait_for(lambda: hosts.version(STABLE_RT) == "1.0.0", 300, f"{STABLE_RT} to roll back to 1.0.0")
    rt = scene.inspect(STABLE_RT)
    assert rt["State"]["Running"]
    # by digest, not by the tag: the registry's digest for 1.0.0, or (podman's API cannot tell
    # which one the registry serves) another digest the same image carries in this repository
    digests = json.loads(scene.oci.docker("image", "inspect", rt["Image"]).stdout)[0]["RepoDigests"]
    assert rt["Config"]["Image"] in {f"{hosts.repo}@{v1_digest}", *digests}, (rt["Config"]["Image"], digests)
    assert rt["Config"]["Image"].startswith(f"{hosts.repo}@sha256:")
    assert rt["Config"]["Labels"][REF_LABEL] == f"{hosts.repo}:1.0.0"
    assert rt["Config"]["Labels"][WATCHTOWER_ENABLE] == "false"
    assert hosts.watchtower_would_update(STABLE_RT) == []
    shown = scene.oci.docker("logs", f"{STABLE_RT}-channel")
    logs = shown.stdout + shown.stderr
    assert f"the config moves {STABLE_RT}" in logs and "pinned to 1.0.0" in logs, logs[-3000:]
    assert hosts.version(CANARY_RT) == "2.0.0"  # the other network is untouched


def test_watchtower_and_updates_never_move_a_pinned_network(hosts: Hosts) -> None:
    scene = hosts.scene
    pinned = scene.inspect(STABLE_RT)
    # a new release everywhere, even re-pushed under the pinned version tag
    hosts.publish("3.0.0", "canary", "stable", "latest", "1.0.0")
    proc = hosts.wrapper(STABLE_RT, "flageemonitor-update-image")
    assert proc.returncode == 0 and "runtime unchanged" in proc.stderr, proc.stderr
    rt = scene.inspect(STABLE_RT)
    assert rt["Id"] == pinned["Id"] and hosts.version(STABLE_RT) == "1.0.0"
    assert hosts.watchtower_would_update(STABLE_RT) == []  # --label-enable: never looked at
    assert hosts.watchtower_would_update(CANARY_RT) == [CANARY_RT]
    canary = hosts.wrapper(CANARY_RT, "flageemonitor-update-image")
    assert canary.returncode == 0 and hosts.version(CANARY_RT) == "3.0.0", canary.stderr

    # back to stable: one server-side change again, and Watchtower follows the runtime again
    assert "pinned to 1.0.0 -> stable" in hosts.set_channel(STABLE_NET, "stable")
    wait_for(lambda: hosts.version(STABLE_RT) == "3.0.0", 300, f"{STABLE_RT} to move to stable (3.0.0)")
    rt = scene.inspect(STABLE_RT)
    assert rt["Config"]["Image"] == f"{hosts.repo}:stable"
    assert hosts.watchtower_would_update(STABLE_RT) == [STABLE_RT]


def test_uninstall_removes_the_channel_follower(hosts: Hosts, tmp_path: Path) -> None:
    scene = hosts.scene
    for runtime in (STABLE_RT, CANARY_RT):
        q = shlex.quote
        net = STABLE_NET if runtime == STABLE_RT else CANARY_NET
        header = q(f"X-Bot-Token: {hosts.tokens[net]}")
        url = q(scene.server.url + "/api/bootstrap/install.sh")
        proc = scene.sh(f"curl -fsSL -H {header} {url} | bash -s -- --uninstall --prefix "
                        f"{q(str(hosts.prefixes[runtime]))}")
        assert proc.returncode == 0, proc.stderr
    assert not [n for n in scene.oci.container_names() if n.startswith(("fm-ch-",))]
