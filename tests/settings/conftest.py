"""The endpoint-settings suites' fixtures: each supported persona (Ubuntu 22.04, Ubuntu 14.04
i686, Mint 21, Slackware 13.37 with legacy-only SSH) and a non-root user elevating through the
real sudo (on an endpoint whose / is a private copy-on-write view of this machine's), as one
`Target` with its tree, the commands it received and a way to run a program inside it."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import CLOCKS, Fleet, install_clock

from tests.agent.conftest import listing
from tests.fixtures.sshd import CliResult, run_cli
from tests.support.probes import is_probe

PERSONAS = {"ubuntu2204": "FLEET-LOJA001-PDV201", "ubuntu1404_i686": "FLEET-LOJA001-PDV202",
            "mint21": "FLEET-LOJA001-PDV203", "slackware1337": "FLEET-LOJA001-PDV204"}
SUDO_HOSTS = {"sudo-password": "FLEET-LOJA003-PDV201", "sudo-nopasswd": "FLEET-LOJA003-PDV202"}
NO_SUDO_HOST = "FLEET-LOJA003-PDV203"  # fmtest-no: no sudo rights
GLOB = "FLEET-LOJA001-PDV20[1-4]"  # the four supported personas
SETTINGS_FILES = ("etc/localtime", "etc/localtime-copied-from", "etc/timezone")


@dataclass
class Target:
    fleet: Fleet
    name: str
    persona: str  # a persona key, or "sudo"
    root: Path
    under: tuple[str, ...]  # what tree listings cover

    @property
    def ip(self) -> str:
        return self.fleet.endpoint(self.name).ip

    @property
    def logs_commands(self) -> bool:
        return self.persona != "sudo"

    def tree(self) -> dict[str, tuple[object, ...]]:
        return listing(self.root, under=self.under)

    def inside(self, *argv: str) -> str:
        """Run a program inside the endpoint's tree (chroot, no TZ in the environment)."""
        proc = subprocess.run(["chroot", str(self.root), *argv], capture_output=True, text=True, check=False,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}, timeout=30)
        assert proc.returncode == 0, f"{argv}: {proc.stderr}"
        return proc.stdout.strip()

    def commands(self) -> list[str]:
        return self.fleet.commands(self.persona)

    def clear(self) -> None:
        if self.logs_commands:
            (self.root / "var" / "log" / "commands").unlink(missing_ok=True)

    def reset_clock(self, zone: str = "UTC") -> None:
        """Back to the endpoint's own way of keeping time, on `zone`."""
        if self.persona == "sudo":
            for rel in SETTINGS_FILES:
                (self.root / rel).unlink(missing_ok=True)
            (self.root / "etc" / "localtime").symlink_to(f"/usr/share/zoneinfo/{zone}")
            (self.root / "etc" / "timezone").write_text(zone + "\n")
        else:
            install_clock(self.root, CLOCKS[self.persona], zone)

    def reset_posnet(self) -> None:
        shutil.rmtree(self.root / "posnet", ignore_errors=True)


def mutating(commands: list[str]) -> list[str]:
    """The commands that are not read-only probes (the facts probe, a change-model probe)."""
    return [c for c in commands if not is_probe(c)]


def hostile_marker() -> Path:
    """A file a hostile value would create if it ever reached a shell (here or on an endpoint)."""
    return Path(f"/tmp/flagee-pwned-{secrets.token_hex(4)}")


def untouched(fleet: Fleet, marker: Path) -> None:
    """No persona received any command (not even a probe) and the marker exists nowhere."""
    assert not marker.exists()
    for persona in PERSONAS:
        assert fleet.commands(persona) == [], persona
        assert not (fleet.chroot(persona) / marker.relative_to("/")).exists()


@pytest.fixture(params=[*PERSONAS, *SUDO_HOSTS])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param in SUDO_HOSTS:
        fleet: Fleet = request.getfixturevalue("sudo_fleet")
        # the endpoint's / is a copy of this machine's: compare what these actions touch (its /var/log
        # holds sshd's own login accounting, which any connection updates)
        return Target(fleet, SUDO_HOSTS[request.param], "sudo", fleet.chroot("sudo"), ("etc", "posnet"))
    fleet = request.getfixturevalue("persona_fleet")
    return Target(fleet, PERSONAS[request.param], request.param, fleet.chroot(request.param), ("",))


@dataclass
class SettingsCli:
    """`flageemonitor` against a target's fleet with this test's own state dir and config."""

    target: Target
    state_dir: Path
    config_path: Path

    def configure(self, **extra: Any) -> None:
        config: dict[str, Any] = {"PARAM_REDE": "FLEET", "TIMEZONE": "America/Sao_Paulo",
                                  "ssh": {"timeout": 10, "command_timeout": 60, "host_key_policy": "pin"}}
        config.update(extra)
        self.config_path.write_text(json.dumps(config))

    def __call__(self, *args: str, env: dict[str, str] | None = None, host: str | None = None) -> CliResult:
        return run_cli(*args, "--json", "--host", host or self.target.name, state_dir=self.state_dir,
                       config=self.config_path, inventory=self.target.fleet.inventory_path, env=env, timeout=300)

    def host(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        return self(*args, env=env).host(self.target.name)


@pytest.fixture
def cli(target: Target, tmp_path: Path) -> SettingsCli:
    target.clear()
    run = SettingsCli(target, tmp_path / "state", tmp_path / "config_bot.json")
    run.configure()
    return run
