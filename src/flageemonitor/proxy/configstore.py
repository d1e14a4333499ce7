"""Config store: fetch `config_bot.json` from the control plane without ever losing the last valid one.

A fetched document replaces the current config only after it parses and validates against the
config model; the write is atomic (temp file in the same directory, fsync, rename, fsync of the
directory) and the previous valid config is kept as `config_bot.last-good.json`. Any failure
leaves the current file byte-identical and is reported as one line.

Exit codes of `flageemonitor update-config` (`Outcome.code`):

    0  updated, or unchanged (304 / same bytes)
    2  not configured: no config URL or no token
    3  network: connect error, timeout, transfer cut
    4  auth: the server rejected the token (401/403)
    5  server: 5xx or another unexpected HTTP status
    6  invalid: not JSON, schema error, or a config for another network
    7  local: the config could not be written (disk full, permissions, lock timeout)
    8  untrusted: a key is pinned and the config's signature is missing, wrong or by an unknown key

Signatures (see proxy.config_trust): once `FLAGEEMONITOR_CONFIG_KEYS` pins a key, every 200
answer is checked against the exact bytes received, before they are parsed; the server's key
list is re-read first, so a rotation is followed and a retirement takes effect.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from flageemonitor.core import env
from flageemonitor.core.atomic import atomic_write, remove_stale_temps
from flageemonitor.core.config_model import BotConfig, parse_config_text
from flageemonitor.core.errors import ConfigInvalid
from flageemonitor.core.signing import SigningError, verify
from flageemonitor.proxy import settings
from flageemonitor.proxy.config_fetch import (
    DEFAULT_DEADLINE_S,
    DEFAULT_TIMEOUT,
    Code,
    Fetched,
    Refused,
    Source,
    fetch,
    one_line,
)
from flageemonitor.proxy.config_trust import Trust

log = logging.getLogger("flageemonitor.config")
__all__ = ["Code", "ConfigStore", "Outcome", "Source", "source_from_env"]

LAST_GOOD_NAME = "config_bot.last-good.json"
ETAG_NAME = "config_bot.etag"
LOCK_NAME = "config_bot.lock"
LOCK_WAIT_S = 60.0
# test hook: seconds to sleep between writing the temp file and renaming it (crash tests)
PAUSE_HOOK_ENV = "FLAGEEMONITOR_FAULT_PAUSE_BEFORE_RENAME"


@dataclass(frozen=True)
class Outcome:
    code: Code
    changed: bool
    message: str
    config: BotConfig | None = None

    @property
    def ok(self) -> bool:
        return self.code == Code.OK


def deadline_from_env(environ: Mapping[str, str] | None = None) -> float:
    """`FLAGEEMONITOR_CONFIG_TIMEOUT`: seconds a whole refresh may take (default 60)."""
    raw = env.get("CONFIG_TIMEOUT", environ=environ)
    try:
        value = float(raw) if raw else DEFAULT_DEADLINE_S
    except ValueError:
        return DEFAULT_DEADLINE_S
    return value if value > 0 else DEFAULT_DEADLINE_S


def source_from_env(environ: Mapping[str, str] | None = None) -> Source | None:
    """`FLAGEEMONITOR_CONFIG_URL`, else `FLAGEEMONITOR_API_BASE` + `/bot/config`; None without URL or token."""
    url = env.get("CONFIG_URL", environ=environ)
    if not url:
        base = env.get("API_BASE", environ=environ)
        if base:
            url = base.rstrip("/") + "/bot/config"
    token = env.get("TOKEN", environ=environ)
    if not url or not token:
        return None
    return Source(url=url, token=token, rede=env.get("REDE", environ=environ))


class ConfigStore:
    """The config file, its last-known-good copy and the ETag, all in one directory."""

    def __init__(
        self, path: Path | None = None, *, timeout: httpx.Timeout | None = None, deadline_s: float | None = None
    ) -> None:
        self.path = path or settings.config_path()
        self.dir = self.path.parent
        self.last_good_path = self.dir / LAST_GOOD_NAME
        self.etag_path = self.dir / ETAG_NAME
        self.lock_path = self.dir / LOCK_NAME
        self.timeout = timeout or DEFAULT_TIMEOUT
        self.deadline_s = deadline_s if deadline_s is not None else deadline_from_env()

    # --- reading
    def current_bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def current(self) -> BotConfig | None:
        """The current config if it exists and is valid."""
        data = self.current_bytes()
        if data is None:
            return None
        try:
            return parse_config_text(data)
        except ConfigInvalid:
            return None

    def load(self) -> BotConfig:
        """The current config; raises ConfigMissing or ConfigInvalid naming the file."""
        from flageemonitor.core.config_model import load_config_file

        return load_config_file(self.path)

    def _etag(self, current: bytes) -> str | None:
        """The stored ETag, only if it was stored for exactly these bytes (a config replaced by
        other means must be fetched in full, not answered with 304)."""
        try:
            etag, _, digest = self.etag_path.read_text(encoding="ascii").strip().rpartition(" ")
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        return (etag or None) if digest == hashlib.sha256(current).hexdigest() else None

    # --- the refresh
    def refresh(self, source: Source | None) -> Outcome:
        """Fetch, validate and install a new config; never raises, never loses the current one."""
        if source is None:
            return Outcome(Code.NOT_CONFIGURED, False, "no config URL or token configured; kept the current config")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with self._lock():
                return self._refresh_locked(source)
        except TimeoutError:
            return Outcome(Code.LOCAL, False, f"another update holds {self.lock_path}; kept the current config")
        except OSError as exc:
            return Outcome(Code.LOCAL, False, f"cannot use {self.dir}: {_oserror(exc)}; kept the current config")

    def _refresh_locked(self, source: Source) -> Outcome:
        self._remove_stale_temps()
        current_bytes = self.current_bytes()
        current_valid = current_bytes is not None and _valid(current_bytes)
        etag = self._etag(current_bytes) if current_valid and current_bytes is not None else None
        kept = "kept the current config" if current_bytes is not None else "no config yet"
        got = fetch(source, etag, timeout=self.timeout, deadline_s=self.deadline_s)
        if isinstance(got, Refused):
            return Outcome(got.code, False, f"{got.reason}; {kept}")
        if got.not_modified:
            return Outcome(Code.OK, False, "config unchanged (304 Not Modified)")
        data, new_etag = got.body, got.etag
        checked = self._check_signature(source, got)
        if isinstance(checked, Refused):
            return Outcome(checked.code, False, f"{checked.reason}; {kept}")
        try:
            config = parse_config_text(data)
        except ConfigInvalid as exc:
            return Outcome(Code.INVALID, False, f"server sent an invalid config: {one_line(exc)}; {kept}")
        if source.rede and source.rede != config.PARAM_REDE:
            return Outcome(Code.INVALID, False,
                           f"server sent the config of network {config.PARAM_REDE!r}, expected {source.rede!r}; {kept}")
        if data == current_bytes:
            self._write_etag(new_etag, data)
            return Outcome(Code.OK, False, f"config unchanged (version {config.CONFIG_VERSION})", config)
        try:
            if current_valid and current_bytes is not None:
                atomic_write(self.last_good_path, current_bytes)
            atomic_write(self.path, data, before_rename=_pause_hook)
        except OSError as exc:
            return Outcome(Code.LOCAL, False, f"cannot write {self.path}: {_oserror(exc)}; {kept}")
        self._write_etag(new_etag, data)
        return Outcome(Code.OK, True, f"config updated to version {config.CONFIG_VERSION}{checked}", config)

    def _check_signature(self, source: Source, got: Fetched) -> Refused | str:
        """Refused, or a note for the success line ("" while no key is pinned)."""
        trust = Trust.from_env(self.dir)
        try:
            if not trust.pins():
                return ""
        except SigningError as exc:
            return Refused(Code.NOT_CONFIGURED, f"FLAGEEMONITOR_CONFIG_KEYS is malformed: {exc}")
        note = ""
        listed = fetch(source, None, timeout=self.timeout, deadline_s=self.deadline_s, keys=True)
        if isinstance(listed, Refused):
            note = f" (the key list was not updated: {listed.reason})"
        else:
            try:
                trust.learn(listed.body, listed.signature)
            except SigningError as exc:
                note = f" ({exc})"
            except OSError as exc:
                note = f" (cannot store the key list: {_oserror(exc)})"
        try:
            key = verify(got.body, got.signature, trust.trusted())
        except SigningError as exc:
            return Refused(Code.UNTRUSTED, f"config refused: {exc}{note}")
        return f" (signed by key {key.id})"

    def _write_etag(self, etag: str | None, data: bytes) -> None:
        try:
            if etag and etag.isascii() and "\n" not in etag:
                line = f"{etag} {hashlib.sha256(data).hexdigest()}\n"
                atomic_write(self.etag_path, line.encode("ascii"), durable=False)
            else:
                self.etag_path.unlink(missing_ok=True)
        except OSError as exc:  # an ETag is an optimisation: losing it only costs a full download
            log.debug("cannot store ETag: %s", exc)

    def _remove_stale_temps(self) -> None:
        """Temp files left by an update killed mid-way (we hold the lock, so none is live)."""
        remove_stale_temps(self.dir)

    @contextlib.contextmanager
    def _lock(self, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait_s
            waiting = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(str(self.lock_path)) from None
                    if not waiting:
                        log.warning("another update holds %s; waiting up to %g s", self.lock_path, wait_s)
                        waiting = True
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _valid(data: bytes) -> bool:
    try:
        parse_config_text(data)
    except ConfigInvalid:
        return False
    return True


def _pause_hook(tmp: Path) -> None:
    """Test hook: with FLAGEEMONITOR_FAULT_PAUSE_BEFORE_RENAME set, sleep that long before the rename."""
    pause = os.environ.get(PAUSE_HOOK_ENV)
    if pause:
        sys.stderr.write(f"paused before rename: {tmp}\n")
        sys.stderr.flush()
        time.sleep(float(pause))


def _oserror(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "disk full (ENOSPC)"
    return exc.strerror or str(exc)
