"""Host keys pinned on first use, kept in `<state_dir>/known_hosts` (OpenSSH format).

Policies (config `ssh.host_key_policy`):
- `pin`: a host seen for the first time has its key recorded; a later different key is refused;
- `strict`: only hosts already pinned are accepted;
- `insecure`: any key is accepted and nothing is recorded.

Entries are written as `[ip]:port type base64` (or `ip type base64` on port 22), one per line,
appended with a single write so concurrent runs never interleave half lines.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import asyncssh

log = logging.getLogger("flageemonitor.ssh")

POLICIES = ("pin", "strict", "insecure")


def host_id(ip: str, port: int) -> str:
    return ip if port == 22 else f"[{ip}]:{port}"


def repin_hint(path: Path, ip: str, port: int) -> str:
    return f"if the endpoint was reinstalled, remove its entry with: ssh-keygen -R '{host_id(ip, port)}' -f {path}"


class HostKeyStore:
    """The pinned keys of one state directory, read once per run."""

    def __init__(self, path: Path, policy: str = "pin", *, create_dirs: bool = True) -> None:
        """`create_dirs=False` (a dry run): a new key is pinned on disk only when the state
        directory already exists; otherwise it is trusted for this run only."""
        if policy not in POLICIES:
            raise ValueError(f"host key policy {policy!r}: expected one of {', '.join(POLICIES)}")
        self.path = path
        self.policy = policy
        self.create_dirs = create_dirs
        self._keys: dict[str, list[asyncssh.SSHKey]] | None = None

    def _load(self) -> dict[str, list[asyncssh.SSHKey]]:
        if self._keys is not None:
            return self._keys
        keys: dict[str, list[asyncssh.SSHKey]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for number, line in enumerate(lines, 1):
            parts = line.split()
            if len(parts) < 3 or parts[0].startswith("#"):
                continue
            try:
                key = asyncssh.import_public_key(f"{parts[1]} {parts[2]}")
            except (asyncssh.KeyImportError, ValueError):
                log.warning("%s:%d: unreadable host key entry ignored", self.path, number)
                continue
            for pattern in parts[0].split(","):
                keys.setdefault(pattern, []).append(key)
        self._keys = keys
        return keys

    def pinned(self, ip: str, port: int) -> list[asyncssh.SSHKey]:
        return list(self._load().get(host_id(ip, port), []))

    def pin(self, ip: str, port: int, key: asyncssh.SSHKey) -> None:
        """Record `key` for the endpoint (no-op under `insecure` or when already pinned)."""
        if self.policy == "insecure":
            return
        keys = self._load()
        hid = host_id(ip, port)
        if key in keys.get(hid, []):
            return
        keys.setdefault(hid, []).append(key)
        algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
        if not self.create_dirs and not self.path.parent.is_dir():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{hid} {algorithm} {blob}\n".encode("ascii"))
        finally:
            os.close(fd)
        log.debug("pinned the host key of %s (%s)", hid, algorithm)
