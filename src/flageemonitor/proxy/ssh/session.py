"""The asyncssh transport: one connection per endpoint, shared by the probe and the action.

Every remote step is bounded: the connect (TCP + key exchange + auth) by `connect_timeout`, each
command by its timeout. A command that exceeds it raises CommandTimeout and the connection is
closed (its channel may be stuck); the run goes on with the other hosts. asyncssh errors are
mapped to the project's named errors, whose messages never carry a password.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import re
import secrets
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from flageemonitor.core.errors import (
    ActionFailed,
    AuthRejected,
    CommandTimeout,
    FlageeError,
    HostKeyMismatch,
    HostUnreachable,
)
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.actions.base import CommandResult
from flageemonitor.proxy.ssh.algorithms import algorithms
from flageemonitor.proxy.ssh.commands import SudoMode, command_text, elevate, elevate_deciding, stdin_for
from flageemonitor.proxy.ssh.known_hosts import HostKeyStore, host_id, repin_hint

log = logging.getLogger("flageemonitor.ssh")
# asyncssh logs every connection at INFO; at fan-out scale that is noise and CPU.
logging.getLogger("asyncssh").setLevel(logging.WARNING)
# Legacy endpoints need finite-field Diffie-Hellman; the library's deprecation notice about it
# would print on every run against them.
warnings.filterwarnings("ignore", message="Diffie-Hellman over finite fields", module="asyncssh")


@dataclass(frozen=True)
class ConnectSettings:
    connect_timeout: float = 30.0
    command_timeout: float = 120.0
    legacy_algorithms: bool = True
    host_key_policy: str = "pin"


class _PinningClient(asyncssh.SSHClient):
    """Decides on host keys that are not (yet) in the pinned set."""

    def __init__(self, store: HostKeyStore | None, ip: str, port: int) -> None:
        self.store = store
        self.ip, self.port = ip, port
        self.refused: str | None = None  # "changed" or "unknown"
        self.new_key: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        if self.store is None:
            return True
        pinned = self.store.pinned(self.ip, self.port)
        if key in pinned:
            return True  # pinned meanwhile by a concurrent connection to the same endpoint
        if pinned:
            self.refused = "changed"
            return False
        if self.store.policy == "strict":
            self.refused = "unknown"
            return False
        self.new_key = key
        return True


def _unreachable(host: Host, reason: str) -> HostUnreachable:
    return HostUnreachable(f"{host.name} ({host.ip}:{host.port}): {reason}")


class Connector:
    """Opens sessions for one run, sharing the algorithm lists, loaded keys and pinned keys."""

    def __init__(self, settings: ConnectSettings, store: HostKeyStore | None) -> None:
        self.settings = settings
        self.store = store if settings.host_key_policy != "insecure" else None
        self._algs = algorithms(settings.legacy_algorithms)
        self._keys: dict[str, asyncssh.SSHKey] = {}

    @classmethod
    def for_state_dir(cls, settings: ConnectSettings, state_dir: Path, *, create_dirs: bool = True) -> Connector:
        return cls(settings, HostKeyStore(state_dir / "known_hosts", settings.host_key_policy, create_dirs=create_dirs))

    def _client_key(self, path: str) -> asyncssh.SSHKey:
        if path not in self._keys:
            try:
                self._keys[path] = asyncssh.read_private_key(path)
            except (OSError, asyncssh.KeyImportError) as exc:
                raise AuthRejected(f"cannot read the SSH key file {path}: {exc}") from None
        return self._keys[path]

    def _options(self, host: Host, client: _PinningClient) -> dict[str, Any]:
        store = self.store
        opts: dict[str, Any] = {
            "username": host.user,
            "password": host.password,
            "client_keys": [self._client_key(host.key_file)] if host.key_file else None,
            "agent_path": None,
            "config": None,
            "gss_host": None,
            "x509_trusted_certs": None,
            "known_hosts": None if store is None else (lambda h, a, p: (store.pinned(host.ip, host.port), [], [])),
            "client_factory": lambda: client,
            "connect_timeout": self.settings.connect_timeout,
            "login_timeout": self.settings.connect_timeout,
            "kex_algs": list(self._algs.kex),
            "encryption_algs": list(self._algs.ciphers),
            "mac_algs": list(self._algs.macs),
            "compression_algs": ["none"],
        }
        methods = (["publickey"] if host.key_file else []) + (
            ["keyboard-interactive", "password"] if host.password is not None else []
        )
        if methods:
            opts["preferred_auth"] = methods
        return opts

    async def open(self, host: Host) -> SshSession:
        client = _PinningClient(self.store, host.ip, host.port)
        try:
            conn = await asyncssh.connect(host.ip, host.port, **self._options(host, client))
        except asyncssh.HostKeyNotVerifiable:
            raise self._key_error(host, client) from None
        except asyncssh.PermissionDenied:
            self._pin(host, client)
            raise AuthRejected(
                f"{host.name} ({host.ip}:{host.port}): the endpoint refused the credentials of user {host.user!r}"
            ) from None
        except FlageeError:
            raise
        except Exception as exc:
            raise map_connect_error(host, exc, self.settings.connect_timeout) from None
        self._pin(host, client)
        return SshSession(conn, host, self.settings.command_timeout)

    def _pin(self, host: Host, client: _PinningClient) -> None:
        if self.store is not None and client.new_key is not None:
            try:
                self.store.pin(host.ip, host.port, client.new_key)
            except OSError as exc:
                log.warning("could not pin the host key of %s: %s", host.name, exc)

    def _key_error(self, host: Host, client: _PinningClient) -> HostKeyMismatch:
        path = self.store.path if self.store is not None else Path("known_hosts")
        where = f"{host.name} ({host_id(host.ip, host.port)})"
        if client.refused == "unknown":
            return HostKeyMismatch(
                f"{where}: host key not pinned and ssh.host_key_policy is 'strict'; "
                f"pin it with ssh.host_key_policy 'pin' for one run"
            )
        return HostKeyMismatch(
            f"{where}: the host key CHANGED since it was pinned in {path}; refusing to connect "
            f"(possible impersonation). {repin_hint(path, host.ip, host.port)}"
        )


def map_connect_error(host: Host, exc: BaseException, connect_timeout: float) -> FlageeError:
    """A named error for whatever asyncssh or the socket layer raised while connecting."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return _unreachable(host, f"no SSH answer within {connect_timeout:g}s")
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthRejected(f"{host.name} ({host.ip}:{host.port}): the endpoint refused the credentials")
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        return _unreachable(host, f"SSH negotiation failed ({exc.reason})")
    if isinstance(exc, asyncssh.DisconnectError):
        return _unreachable(host, f"connection closed by the endpoint ({exc.reason})")
    if isinstance(exc, ConnectionRefusedError):
        return _unreachable(host, "connection refused")
    if isinstance(exc, OSError):
        return _unreachable(host, exc.strerror or type(exc).__name__)
    return _unreachable(host, f"{type(exc).__name__}: {exc}")


class SshSession:
    """An open connection to one endpoint (implements actions.base.RemoteSession)."""

    def __init__(self, conn: asyncssh.SSHClientConnection, host: Host, command_timeout: float) -> None:
        self._conn = conn
        self.host = host
        self.user = host.user
        self.command_timeout = command_timeout
        self._sudo_mode: SudoMode | None = None
        self.closed = False

    @property
    def is_root(self) -> bool:
        return self.user == "root"

    def _sudo(self) -> SudoMode | None:
        """How to elevate: nothing for root, `sudo -n` without a known password; None while
        undecided (the first elevated command decides on the endpoint, `elevate_deciding`)."""
        if self.is_root:
            return SudoMode.NONE
        if self._sudo_mode is None and self.host.password is None:
            self._sudo_mode = SudoMode.PASSWORDLESS
        return self._sudo_mode

    async def run(
        self,
        command: str | Sequence[str],
        *,
        sudo: bool = False,
        timeout: float | None = None,
        input: str | None = None,
        check: bool = False,
    ) -> CommandResult:
        """See RemoteSession.run. Secrets belong in `input`, never in `command`: the command
        text may appear in an error detail (`check=True`)."""
        mode = self._sudo() if sudo else SudoMode.NONE
        if mode is None:
            result = await self._run_deciding(command, input, timeout)
        else:
            result = await self._exec(elevate(command, mode), stdin_for(mode, self.host.password, input), timeout)
        if check and not result.ok:
            tail = (result.stderr or result.stdout).strip()[-300:]
            raise ActionFailed(f"{command_text(command)[:120]!r} exited {result.exit_status}: {tail}")
        return result

    async def _run_deciding(self, command: str | Sequence[str], input: str | None,
                            timeout: float | None) -> CommandResult:
        """The first elevated command of a user with a password: the endpoint decides between
        `sudo -n` and the password in the same round trip and says which on stderr's first line,
        which is taken off the result and kept for the session's later commands."""
        mark = f"@@flagee-sudo-{secrets.token_hex(6)}:"
        stdin = stdin_for(SudoMode.PASSWORD, self.host.password, input)
        result = await self._exec(elevate_deciding(command, mark), stdin, timeout)
        first, _, rest = result.stderr.partition("\n")
        if first.startswith(mark):
            self._sudo_mode = SudoMode(first[len(mark):].strip())
            result = CommandResult(result.exit_status, result.stdout, rest)
        return result

    async def _exec(self, line: str, stdin: str | None, timeout: float | None) -> CommandResult:
        if self.closed:
            raise _unreachable(self.host, "connection already closed")
        budget = self.command_timeout if timeout is None else timeout
        try:
            proc = await asyncio.wait_for(
                self._conn.run(line, input=stdin, check=False, encoding="utf-8", errors="replace"),
                timeout=budget,
            )
        except TimeoutError:
            self.abort()
            raise CommandTimeout(
                f"{self.host.name} ({self.host.ip}): a remote command did not finish within {budget:g}s"
            ) from None
        except (asyncssh.Error, OSError) as exc:
            self.abort()
            raise _unreachable(self.host, f"connection lost during a command ({type(exc).__name__})") from None
        status = proc.exit_status if proc.exit_status is not None else (128 + 15 if proc.exit_signal else -1)
        return CommandResult(status, str(proc.stdout or ""), str(proc.stderr or ""))

    async def put(self, data: bytes, remote_path: str, *, mode: int = 0o644, sudo: bool = False,
                  sha256: str | None = None, backup: str | None = None, owner: str | None = None) -> None:
        """Upload beside the target under a temporary name, then rename over it atomically.

        The bytes travel on the standard input of `cat` in an exec channel (no SFTP: many old
        endpoints have no sftp-server), always as the login user: with `sudo` for a non-root user
        they go to a private staging file in /tmp and root then moves them into place, so no
        password ever shares a stream with the data. `sha256`: the temporary file's checksum is
        verified on the endpoint before the rename (a mismatch leaves the target untouched).
        `backup`: the current target, if any, is kept under this path (hard link, else copy).
        `owner`: numeric `uid:gid` for the new file (root or sudo). Root needs one round trip."""
        elevated = sudo and not self.is_root
        directory, name = posixpath.split(remote_path)
        token = secrets.token_hex(6)
        final_tmp = posixpath.join(directory or ".", f".{name}.flagee-{token}")
        staging = f"/tmp/.{name}.flagee-stage-{token}" if elevated else None  # noqa: S108 - random, 0600
        receive = f"umask 077; cat > {_q(staging or final_tmp)}"
        place = place_script(final_tmp, remote_path, mode=mode, sha256=sha256, backup=backup, staging=staging,
                             owner=owner)
        line = receive + (f" || {{ rm -f -- {_q(staging)}; exit 1; }}" if staging else f" && {place}")
        result = await self._exec_bytes(line, data, self.command_timeout, f"upload of {remote_path}")
        if not result.ok:
            tail = (result.stderr or result.stdout).strip()[-300:]
            raise ActionFailed(f"{self.host.name}: upload of {remote_path} failed (exit {result.exit_status}): {tail}")
        if elevated:
            await self.run(place, sudo=True, check=True)

    async def _exec_bytes(self, line: str, data: bytes, timeout: float, what: str) -> CommandResult:
        """Run `line` with `data` as its standard input (binary safe), written in chunks that
        wait for the channel's window: a fan-out of large uploads holds a window per host in
        memory, not a copy of the file per host."""
        if self.closed:
            raise _unreachable(self.host, "connection already closed")

        async def go() -> CommandResult:
            proc = await self._conn.create_process(line, encoding=None)
            view = memoryview(data)
            for start in range(0, len(view), UPLOAD_CHUNK):
                proc.stdin.write(view[start:start + UPLOAD_CHUNK])
                await proc.stdin.drain()
            proc.stdin.write_eof()
            out, err = await proc.communicate()
            status = proc.exit_status if proc.exit_status is not None else -1
            return CommandResult(status, bytes(out or b"").decode("utf-8", "replace"),
                                 bytes(err or b"").decode("utf-8", "replace"))

        try:
            return await asyncio.wait_for(go(), timeout=timeout)
        except TimeoutError:
            self.abort()
            raise CommandTimeout(f"{self.host.name}: {what} did not finish within {timeout:g}s") from None
        except (asyncssh.Error, OSError) as exc:
            self.abort()
            raise _unreachable(self.host, f"connection lost during {what} ({type(exc).__name__})") from None

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.abort()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._conn.close()
            try:
                await asyncio.wait_for(self._conn.wait_closed(), timeout=2)
            except TimeoutError:
                self._conn.abort()


_q = shlex.quote
UPLOAD_CHUNK = 256 * 1024


def place_script(tmp: str, target: str, *, mode: int, sha256: str | None, backup: str | None,
                 staging: str | None, owner: str | None = None) -> str:
    """POSIX sh that moves an uploaded temporary file over `target`: copy from `staging` (sudo
    uploads), chmod, verify the checksum, keep the current target as `backup`, rename. Any
    failure removes the temporary files and leaves the target as it was (exit 3: checksum)."""
    steps = []
    if staging is not None:
        steps.append(f"cp -- {_q(staging)} {_q(tmp)}")
    steps.append(f"chmod {mode:o} {_q(tmp)}")
    if sha256 is not None:
        if not all(c in "0123456789abcdef" for c in sha256) or len(sha256) != 64:
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        steps.append(f"set -- $(sha256sum {_q(tmp)}) && {{ [ \"$1\" = {sha256} ] || "
                     f"{{ echo \"checksum mismatch after upload: $1\" >&2; false; }}; }}")
    if owner is not None:
        if not re.fullmatch(r"\d{1,10}:\d{1,10}", owner):
            raise ValueError(f"owner must be numeric uid:gid: {owner!r}")
        steps.append(f"chown {owner} {_q(tmp)}")
    if backup is not None:
        t, b = _q(target), _q(backup)
        keep = f"{{ ln -- {t} {b} 2>/dev/null || cp -p -- {t} {b}; }}"
        steps.append(f"{{ [ ! -e {t} ] || {{ rm -f -- {b} && {keep}; }}; }}")
    steps.append(f"mv -f -- {_q(tmp)} {_q(target)}")
    cleanup = f"rm -f -- {_q(tmp)}" + (f" {_q(staging)}" if staging is not None else "")
    return " && ".join(steps) + f"; rc=$?; [ $rc -eq 0 ] || {cleanup}; " + (
        f"rm -f -- {_q(staging)}; " if staging is not None else "") + "exit $rc"
