"""The agent suites' fixtures: the real agent bundle repository (`agent_bundle`, built by
`deploy.agent_bundle.build` from Debian's zabbix-agent packages), broken variants of it, the
endpoint's file tree as a comparable listing, and a real Zabbix `agent.ping` to an endpoint's
agent port."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devtools.fleet import Fleet
from zabbix_utils import Getter

from tests.fixtures.bundle_repo import write_sums
from tests.fixtures.sshd import CliResult, run_cli

# what a listing leaves out: the kernel's views, and the personas' own command log
SKIP = ("proc", "dev", "sys", "run", "var/log/commands")
# the `-` backups useradd/groupadd write of the account files on every change: an uninstall
# restores the account files, not the tools' own copies of them
TOOL_BACKUPS = {f"etc/{name}-" for name in ("passwd", "shadow", "group", "gshadow")}
# bundle members that break an upgrade: a setup that fails, an agent that exits at once
BROKEN_SETUP = b"#!/bin/sh\necho 'setup: broken on purpose' >&2\nexit 1\n"
DEAD_AGENT = b"#!/bin/sh\n# an agent that exits at once\nexit 1\n"


@pytest.fixture(scope="session")
def agent_repo(request: pytest.FixtureRequest) -> Path:
    """The real bundle repository (`agent_bundle`: built once per builder version, cached).
    `FLAGEEMONITOR_TEST_AGENT_REPO` names one built earlier by
    `python -m deploy.agent_bundle.build --out DIR` instead."""
    prebuilt = os.environ.get("FLAGEEMONITOR_TEST_AGENT_REPO")
    if prebuilt:
        if not (Path(prebuilt) / "SHA256SUMS").is_file():
            pytest.fail(f"FLAGEEMONITOR_TEST_AGENT_REPO={prebuilt}: no SHA256SUMS there", pytrace=False)
        return Path(prebuilt)
    repo: Path = request.getfixturevalue("agent_bundle")
    return repo


def repack(archive: bytes, replace: dict[str, bytes]) -> bytes:
    """`archive` with the named members' contents replaced (modes and order kept)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as src, tarfile.open(fileobj=out, mode="w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            if info.name in replace:
                data = replace[info.name]
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def variant(base: Path, dest: Path, replace: dict[str, bytes]) -> Path:
    """A copy of repository `base` whose archives have `replace`d members, with its SHA256SUMS."""
    shutil.copytree(base, dest)
    for name in ("ariusmonitor.tar.gz", "ariusmonitor-i686.tar.gz"):
        path = dest / name
        if path.exists():
            path.write_bytes(repack(path.read_bytes(), replace))
    write_sums(dest)
    return dest


def listing(root: Path, *, under: tuple[str, ...] = ("",)) -> dict[str, tuple[Any, ...]]:
    """Every path under `root` (or under its sub-trees `under`) -> (kind, mode, uid, gid,
    sha256 or link target)."""
    out: dict[str, tuple[Any, ...]] = {}
    for sub in under:
        top = root / sub
        if not top.exists() and not top.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            rel_dir = os.path.relpath(dirpath, root)
            dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in SKIP]
            for name in [*dirnames, *filenames, *([] if dirpath != str(top) else ["."])]:
                path = Path(dirpath) / name if name != "." else Path(dirpath)
                rel = os.path.normpath(os.path.relpath(path, root))
                if rel in SKIP:
                    continue
                st = path.lstat()
                if path.is_symlink():
                    what: Any = "-> " + os.readlink(path)
                elif path.is_dir():
                    what = "dir"
                else:
                    what = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = (st.st_mode, st.st_uid, st.st_gid, what)
    return out


def diff(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def agent_ping(ip: str, port: int) -> str | None:
    """A real Zabbix passive-check request for `agent.ping`; None when nothing answers."""
    try:
        return str(Getter(host=ip, port=port, timeout=5).get("agent.ping").value)
    except Exception:
        return None


@dataclass
class AgentCli:
    """`flageemonitor` against a fleet, with this test's own state dir and a config using the
    bundle repository `repo`."""

    fleet: Fleet
    state_dir: Path
    config_path: Path

    def configure(self, repo: Path, **extra: Any) -> None:
        config: dict[str, Any] = {
            "PARAM_REDE": "FLEET", "PARAM_LOCAL_REPO_DIR": str(repo), "PARAM_PROXY_IP": "127.0.0.1",
            "ssh": {"timeout": 10, "command_timeout": 60, "host_key_policy": "pin"},
        }
        config.update(extra)
        self.config_path.write_text(json.dumps(config))

    def __call__(self, *args: str, inventory: Path | None = None, timeout: float = 300) -> CliResult:
        return run_cli(*args, "--json", state_dir=self.state_dir, config=self.config_path,
                       inventory=inventory or self.fleet.inventory_path, timeout=timeout)

    def host(self, *args: str, name: str) -> dict[str, Any]:
        return self(*args, "--host", name).host(name)


@pytest.fixture
def agent_cli(tmp_path: Path) -> Callable[[Fleet], AgentCli]:
    def make(fleet: Fleet) -> AgentCli:
        return AgentCli(fleet, tmp_path / "state", tmp_path / "config_bot.json")

    return make
