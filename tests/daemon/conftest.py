"""Fixtures of the config-lifecycle tests: one real control plane per module, the fault proxy
in front of it, and helpers to run the real `flageemonitor` CLI as a subprocess."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.daemon.faultproxy import FaultProxy
from tests.fixtures.server import ControlPlane

CLI = str(Path(sys.executable).with_name("flageemonitor"))


def valid_config(version_hint: int, **extra: object) -> dict[str, object]:
    """A config the server stores; `version_hint` makes each body different."""
    return {"PARAM_PROVIDER": "arius", "TIMEZONE": "America/Sao_Paulo", "PARAM_INVENTORY": "file",
            "PARAM_REDE": "TESTNET", "NOTE": f"revision {version_hint}", **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("cp"), config=valid_config(0))
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def proxy(server: ControlPlane) -> Iterator[FaultProxy]:
    fp = FaultProxy(server.url)
    try:
        yield fp
    finally:
        fp.close()


def cli_env(state_dir: Path, config_url: str, token: str, rede: str = "TESTNET", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLAGEEMONITOR_", "ARIUSMONITOR_"))}
    env.update({
        "FLAGEEMONITOR_STATE_DIR": str(state_dir),
        # quoted as `docker run --env-file` leaves them: must be tolerated
        "FLAGEEMONITOR_CONFIG_URL": f'"{config_url}"',
        "FLAGEEMONITOR_TOKEN": f'"{token}"',
        "FLAGEEMONITOR_REDE": rede,
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def update_config(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "update-config"], env=env, capture_output=True, text=True, timeout=timeout)


@contextmanager
def tmpfs(mnt: Path, size: str, inodes: int | None = None) -> Iterator[Path]:
    """A small tmpfs the test can fill (needs root, as on this machine; fails loudly otherwise)."""
    mnt.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700" + (f",nr_inodes={inodes}" if inodes else "")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full test: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> Path:
    """Write until ENOSPC; returns the filler file."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


class FullDisk:
    """A state volume (a `tmpfs` with `inodes` set) that a running daemon cannot un-fill by itself.

    Both blocks and inodes are used up: the daemon gives a page back on its own (a lock file is
    truncated on every release) and a config write needs a new file. A reader is held on the
    outbox, so SQLite never deletes the WAL and its index on the daemon's last close."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.files: Path | None = None
        self.filler: Path | None = None
        self.reader: sqlite3.Connection | None = None

    def apply(self) -> None:
        outbox = self.state / "spool.sqlite3"
        assert outbox.exists(), "the daemon has not opened its outbox yet"
        self.reader = sqlite3.connect(outbox)  # reads only; opening it keeps the WAL and its index
        self.reader.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        self.filler = fill(self.state)
        self.files = self.state / "inodes"
        self.files.mkdir()
        n = 0
        try:
            while True:
                (self.files / str(n)).touch()
                n += 1
        except OSError as exc:
            assert exc.errno == errno.ENOSPC

    def undo(self) -> None:
        if self.files is not None:
            shutil.rmtree(self.files)
        if self.filler is not None:
            self.filler.unlink()
        if self.reader is not None:
            self.reader.close()
        self.files = self.filler = self.reader = None
