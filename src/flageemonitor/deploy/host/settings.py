"""The installer's env file (docker `--env-file` format) and the engine's settings from it.

Rules: one `KEY=VALUE` per line, taken literally (no quotes, no expansion); blank lines, comments
and lines that are not `KEY=VALUE` are ignored. The engine's own environment may override the
runtime name, the health timeout, the hold interval and the channel interval (what the wrappers
pass through).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULT_WATCHTOWER_IMAGE = "nickfedor/watchtower:1.20.2"
# inside the engine's container: where the wrapper mounts the env file, the state, the login
ENGINE_ENV_FILE = "/run/flageemonitor/host.env"
ENGINE_STATE_DIR = "/run/flageemonitor/state"
ENGINE_REGISTRY_DIR = "/run/flageemonitor/registry"


class SettingsError(ValueError):
    """The env file is missing or holds a value the engine cannot use; the message says which."""


def parse_env_text(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if KEY.match(key):
            values[key] = value
    return values


def _number(name: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


@dataclass(frozen=True)
class HostSettings:
    """What the engine needs to know about one installed runtime."""

    values: dict[str, str]  # every line of the env file: the runtime's environment
    runtime: str
    image: str
    state_dir: str  # in the runtime container
    host_state_dir: str  # on the host
    network: str
    socket: str  # the engine socket on the host (mounted into Watchtower and the hold container)
    registry_dir: str  # on the host; "" without a registry login
    watchtower_image: str
    watchtower_interval: int
    health_timeout: int
    hold_interval: int
    channel_interval: int  # how often `<runtime>-channel` reads the config's image channel
    timezone: str

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] = os.environ) -> HostSettings:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read the env file {path}: {exc.strerror}") from None
        return cls.from_values(parse_env_text(text), environ)

    @classmethod
    def from_values(cls, values: dict[str, str], environ: Mapping[str, str] = os.environ) -> HostSettings:
        def get(name: str, default: str = "") -> str:
            return values.get(name) or default

        runtime = environ.get("FLAGEEMONITOR_RUNTIME_NAME") or get("FLAGEEMONITOR_RUNTIME_NAME", "flageemonitor")
        if not NAME.match(runtime):
            raise SettingsError(f"invalid FLAGEEMONITOR_RUNTIME_NAME {runtime!r}")
        image = get("FLAGEEMONITOR_IMAGE")
        if not image:
            raise SettingsError("FLAGEEMONITOR_IMAGE is not set in the env file")
        root = get("FLAGEEMONITOR_CONTAINER_ROOT", "/flageemonitor")
        interval = _number("FLAGEEMONITOR_WATCHTOWER_INTERVAL", get("FLAGEEMONITOR_WATCHTOWER_INTERVAL", "300"),
                           30, 604800)
        timeout = environ.get("FLAGEEMONITOR_HEALTH_TIMEOUT") or get("FLAGEEMONITOR_HEALTH_TIMEOUT", "120")
        hold = environ.get("FLAGEEMONITOR_HOLD_INTERVAL") or str(interval)
        channel = environ.get("FLAGEEMONITOR_CHANNEL_INTERVAL") or get("FLAGEEMONITOR_CHANNEL_INTERVAL", "60")
        return cls(
            values=values,
            runtime=runtime,
            image=image,
            state_dir=get("FLAGEEMONITOR_STATE_DIR", f"{root}/state"),
            host_state_dir=get("FLAGEEMONITOR_HOST_STATE_DIR", "/var/lib/flageemonitor"),
            network=get("FLAGEEMONITOR_DOCKER_NETWORK"),
            socket=get("FLAGEEMONITOR_DOCKER_SOCKET", "/var/run/docker.sock"),
            registry_dir=get("FLAGEEMONITOR_REGISTRY_CONFIG_DIR"),
            watchtower_image=get("FLAGEEMONITOR_WATCHTOWER_IMAGE", DEFAULT_WATCHTOWER_IMAGE),
            watchtower_interval=interval,
            health_timeout=_number("FLAGEEMONITOR_HEALTH_TIMEOUT", timeout, 5, 3600),
            hold_interval=_number("FLAGEEMONITOR_HOLD_INTERVAL", hold, 1, 604800),
            channel_interval=_number("FLAGEEMONITOR_CHANNEL_INTERVAL", channel, 1, 86400),
            timezone=get("TZ"),
        )

    @property
    def next_name(self) -> str:
        return f"{self.runtime}-next"

    @property
    def watchtower_name(self) -> str:
        return f"{self.runtime}-watchtower"

    @property
    def hold_name(self) -> str:
        return f"{self.runtime}-hold"

    @property
    def channel_name(self) -> str:
        return f"{self.runtime}-channel"
