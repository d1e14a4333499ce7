"""The config signing keys, kept in a file outside the database (like the secrets key).

The key file (`FLAGEEMONITOR_SIGNING_KEY_FILE`, default `flageemonitor-signing.key` beside the
secrets key file) is created with mode 0600 on first use. It holds one Ed25519 private key per
line (base64 of the 32-byte seed): the first line signs, every line's public key is listed as
valid. `flageemonitor-server signing rotate` puts a new key first (the old one stays valid: the
overlap); `signing retire KEYID` deletes a line that no longer signs. Servers sharing a database
must share the file.

Signatures are computed once per (body, signing key) and remembered: serving a config never
signs. A worker notices a rotated or retired key by the file's identity (inode, size, mtime),
which it checks only when it builds a new view of a config or of the key list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from flageemonitor.core import signing
from flageemonitor.core.atomic import atomic_write
from flageemonitor.core.errors import FlageeError
from flageemonitor.core.signing import PublicKey
from flageemonitor.server.core.keyfile import key_lines

MEMO_ENTRIES = 4096


class SigningKeyError(FlageeError):
    """The signing key file is unreadable or malformed, or a command cannot apply to it."""


@dataclass(frozen=True)
class KeyList:
    """The served key list and its signatures (one per valid key)."""

    body: bytes
    signature: str


def _seed(key: Ed25519PrivateKey) -> bytes:
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


class Signer:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: list[Ed25519PrivateKey] = []
        self._memo: dict[tuple[bytes, str], str] = {}
        self._key_list: KeyList | None = None

    # --- the file
    def _read(self) -> list[Ed25519PrivateKey]:
        lines = key_lines(self.key_file, lambda: _seed(Ed25519PrivateKey.generate()), "signing key", SigningKeyError)
        try:
            return [Ed25519PrivateKey.from_private_bytes(base64.b64decode(line, validate=True)) for line in lines]
        except (binascii.Error, ValueError):
            raise SigningKeyError(f"the signing key file {self.key_file} holds a malformed key") from None

    def _write(self, keys: list[Ed25519PrivateKey]) -> None:
        atomic_write(self.key_file, b"".join(_seed(k) + b"\n" for k in keys), mode=0o600)

    def _current(self) -> list[Ed25519PrivateKey]:
        """The keys, re-read when the file changed (called with the lock held)."""
        try:
            st = self.key_file.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if stamp is None or stamp != self._stamp or not self._keys:
            self._keys = self._read()
            st = self.key_file.stat()
            self._stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            self._key_list = None
        return self._keys

    # --- serving
    def sign(self, body: bytes) -> str:
        """The signature header value for `body`, by the current signing key (remembered)."""
        with self._lock:
            key = self._current()[0]
            kid = signing.public_of(key).id
            memo_key = (hashlib.sha256(body).digest(), kid)
            value = self._memo.get(memo_key)
            if value is None:
                if len(self._memo) >= MEMO_ENTRIES:
                    self._memo.clear()
                value = self._memo[memo_key] = signing.sign_entry(key, body)
            return value

    def key_list(self) -> KeyList:
        """Every valid public key, signed by each of them (so a proxy trusting any one of them
        learns the others)."""
        with self._lock:
            keys = self._current()
            if self._key_list is None:
                body = signing.key_list_body([signing.public_of(k) for k in keys], signing.public_of(keys[0]))
                self._key_list = KeyList(body, ", ".join(signing.sign_entry(k, body) for k in keys))
            return self._key_list

    # --- admin
    def public_keys(self) -> list[PublicKey]:
        """Valid public keys, the signing one first."""
        with self._lock:
            return [signing.public_of(k) for k in self._current()]

    def rotate(self) -> PublicKey:
        """A new key first in the file: it signs from now on; the others stay valid."""
        with self._lock:
            new = Ed25519PrivateKey.generate()
            self._write([new, *self._current()])
            self._stamp = None
            return signing.public_of(new)

    def retire(self, key_id: str) -> PublicKey:
        """Remove a key that no longer signs; proxies stop trusting it once they read the list."""
        with self._lock:
            keys = self._current()
            ids = [signing.public_of(k).id for k in keys]
            if key_id not in ids:
                raise SigningKeyError(f"no signing key {key_id!r} in {self.key_file} (valid: {', '.join(ids)})")
            if ids.index(key_id) == 0:
                raise SigningKeyError(f"key {key_id} signs configs now; run 'signing rotate' first, then retire it")
            gone = keys[ids.index(key_id)]
            self._write([k for k in keys if k is not gone])
            self._stamp = None
            return signing.public_of(gone)
