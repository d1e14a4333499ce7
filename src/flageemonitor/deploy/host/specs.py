"""The containers the engine creates, as data: the runtime, Watchtower, the hold container and the
channel follower.

A spec's `digest` covers everything but the name, so a container created from the same settings
has the same digest (kept in the label `io.flageemonitor.spec`) and a change of image reference,
environment, mounts, labels or arguments shows as drift.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from flageemonitor.deploy.host.settings import (
    ENGINE_ENV_FILE,
    ENGINE_REGISTRY_DIR,
    ENGINE_STATE_DIR,
    HostSettings,
)

SPEC_LABEL = "io.flageemonitor.spec"
ROLE_LABEL = "io.flageemonitor.role"
RUNTIME_LABEL = "io.flageemonitor.runtime"
REF_LABEL = "io.flageemonitor.image-ref"  # the reference the config asked for (a pin's tag before resolving)
CHANNEL_LABEL = "io.flageemonitor.channel"
WATCHTOWER_ENABLE = "com.centurylinklabs.watchtower.enable"
WATCHTOWER_SCOPE = "com.centurylinklabs.watchtower.scope"
STOP_TIMEOUT = 30
ENGINE_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)  # "host:container[:ro]"
    restart: str = "unless-stopped"
    network: str = ""
    user: str = ""
    stop_timeout: int = STOP_TIMEOUT

    @property
    def digest(self) -> str:
        data = asdict(self)
        data.pop("name")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def named(self, name: str) -> ContainerSpec:
        return replace(self, name=name)


def runtime_spec(s: HostSettings, *, image: str = "", requested: str = "", channel: str = "",
                 watchtower: bool = True) -> ContainerSpec:
    """The runtime running `image` (default: the env file's). A pinned runtime gets
    `watchtower.enable=false`: Watchtower (`--label-enable`) then never looks at it."""
    env = dict(s.values)
    env.update(FLAGEEMONITOR_RUNTIME_NAME=s.runtime, FLAGEEMONITOR_STATE_DIR=s.state_dir)
    labels = {ROLE_LABEL: "runtime", RUNTIME_LABEL: s.runtime,
              WATCHTOWER_ENABLE: "true" if watchtower else "false", WATCHTOWER_SCOPE: s.runtime}
    if requested:
        labels[REF_LABEL] = requested
    if channel:
        labels[CHANNEL_LABEL] = channel
    return ContainerSpec(
        name=s.runtime,
        image=image or s.image,
        environment=env,
        labels=labels,
        binds=[f"{s.host_state_dir}:{s.state_dir}"],
        network=s.network,
    )


def one_shot_spec(s: HostSettings, image: str, command: list[str]) -> ContainerSpec:
    """The runtime's environment and state, for one command (update-config when it is not running)."""
    spec = runtime_spec(s)
    return replace(spec, name="", image=image, command=command, labels={ROLE_LABEL: "one-shot",
                   RUNTIME_LABEL: s.runtime}, restart="no")


def watchtower_spec(s: HostSettings, *, registry_login: bool) -> ContainerSpec:
    env = {"TZ": s.timezone} if s.timezone else {}
    binds = [f"{s.socket}:{ENGINE_SOCKET}"]
    if registry_login:
        # a directory mount: a refreshed config.json is seen without recreating the container
        binds.append(f"{s.registry_dir}:/flageemonitor-registry:ro")
        env["DOCKER_CONFIG"] = "/flageemonitor-registry"
    return ContainerSpec(
        name=s.watchtower_name,
        image=s.watchtower_image,
        command=["--cleanup", "--label-enable", "--scope", s.runtime, "--interval", str(s.watchtower_interval)],
        environment=env,
        labels={ROLE_LABEL: "watchtower", RUNTIME_LABEL: s.runtime, WATCHTOWER_SCOPE: s.runtime,
                WATCHTOWER_ENABLE: "false"},
        binds=binds,
    )


def _engine_spec(s: HostSettings, *, name: str, role: str, image: str, command: list[str], host_env_file: str,
                 registry_login: bool, restart: str) -> ContainerSpec:
    """The engine itself in a companion container: root for the engine socket, no network of its
    own (the engine pulls), the env file and the state directory mounted."""
    # the health timeout comes from the env file (default 120 s), not from a one-off override
    env = {"FLAGEEMONITOR_HOST_ENV_FILE": host_env_file, "FLAGEEMONITOR_RUNTIME_NAME": s.runtime,
           "FLAGEEMONITOR_HOLD_INTERVAL": str(s.hold_interval)}
    binds = [f"{s.socket}:{ENGINE_SOCKET}", f"{host_env_file}:{ENGINE_ENV_FILE}:ro",
             f"{s.host_state_dir}:{ENGINE_STATE_DIR}"]
    if registry_login:
        binds.append(f"{s.registry_dir}:{ENGINE_REGISTRY_DIR}:ro")
        env["DOCKER_CONFIG"] = ENGINE_REGISTRY_DIR
    return ContainerSpec(
        name=name,
        image=image,
        command=["host", command[0], "--env-file", ENGINE_ENV_FILE, *command[1:]],
        environment=env,
        labels={ROLE_LABEL: role, RUNTIME_LABEL: s.runtime},
        binds=binds,
        restart=restart,
        network="none",
        user="0:0",
    )


def hold_spec(s: HostSettings, *, image_id: str, held: str, host_env_file: str,
              registry_login: bool) -> ContainerSpec:
    """The engine polling for an image other than the held (broken) one after a rollback.

    It runs the good image by ID and exits 0 once a newer image is running and healthy and
    Watchtower runs again.
    """
    return _engine_spec(s, name=s.hold_name, role="hold", image=image_id,
                        command=["hold", "--held-image", held], host_env_file=host_env_file,
                        registry_login=registry_login, restart="on-failure")


def channel_spec(s: HostSettings, *, image: str, host_env_file: str, registry_login: bool) -> ContainerSpec:
    """`<runtime>-channel`: the engine reading the config's image channel from the state directory
    every `channel_interval` seconds and moving the runtime when the config names another image."""
    spec = _engine_spec(s, name=s.channel_name, role="channel", image=image, command=["follow"],
                        host_env_file=host_env_file, registry_login=registry_login, restart="unless-stopped")
    spec.environment["FLAGEEMONITOR_CHANNEL_INTERVAL"] = str(s.channel_interval)
    return spec
