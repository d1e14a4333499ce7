"""Config secrets encrypted at rest, with a key kept outside the database.

The values of `core.redact.SECRET_CONFIG_KEYS` (Zabbix, SSH, database and BI passwords and
tokens) are stored as `enc:v1:<Fernet token>` (AES-128-CBC + HMAC-SHA256, from `cryptography`);
everything else in a config stays readable. The proxy receives the decrypted config.

The key file (`FLAGEEMONITOR_SECRETS_KEY_FILE`, default `flageemonitor.key` beside the SQLite
database, else in the working directory) is created with mode 0600 on first use. It holds one
key per line: the first encrypts, every line decrypts — which is how a key is rotated:
`flageemonitor-server secrets rotate` puts a new key first and re-encrypts every stored version;
the old line can then be deleted. Servers sharing a PostgreSQL database must share the key file.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from flageemonitor.core.atomic import atomic_write
from flageemonitor.core.errors import FlageeError
from flageemonitor.core.redact import SECRET_CONFIG_KEYS

PREFIX = "enc:v1:"


class SecretKeyError(FlageeError):
    """The key file is unreadable, malformed, or does not open a stored secret."""


def _render(content: dict[str, Any]) -> str:
    """The served form of a config (same as `services.configs.render_body`)."""
    return json.dumps(content, ensure_ascii=False, indent=2) + "\n"


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: MultiFernet | None = None

    # --- keys
    def _keys(self) -> list[bytes]:
        try:
            lines = self.key_file.read_bytes().split()
        except FileNotFoundError:
            self._create()
            lines = self.key_file.read_bytes().split()
        except OSError as exc:
            raise SecretKeyError(f"cannot read the secrets key {self.key_file}: {exc.strerror}") from None
        if not lines:
            raise SecretKeyError(f"the secrets key file {self.key_file} is empty")
        return lines

    def _create(self) -> None:
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first
        except OSError as exc:
            raise SecretKeyError(f"cannot create the secrets key {self.key_file}: {exc.strerror}") from None
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def fernet(self) -> MultiFernet:
        if self._fernet is None:
            try:
                self._fernet = MultiFernet([Fernet(k) for k in self._keys()])
            except ValueError:
                raise SecretKeyError(f"the secrets key file {self.key_file} holds a malformed key") from None
        return self._fernet

    def rotate_key(self) -> None:
        """Put a new key first in the key file; the old ones still decrypt until removed."""
        keys = self._keys()
        atomic_write(self.key_file, b"\n".join([Fernet.generate_key(), *keys]) + b"\n", mode=0o600)
        self._fernet = None

    # --- values
    def seal_value(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        return PREFIX + self.fernet().encrypt(value.encode("utf-8")).decode("ascii")

    def open_value(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value  # stored before encryption at rest: readable as it is
        try:
            return self.fernet().decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretKeyError(
                f"a stored config secret does not open with the key in {self.key_file} "
                "(a different key file? servers sharing a database must share it)"
            ) from None

    # --- whole configs (the stored body is the served JSON with secret values sealed)
    def seal_body(self, body: str) -> str:
        return _render(self._map(json.loads(body), self.seal_value))

    def open_body(self, body: str) -> str:
        if PREFIX not in body:
            return body
        return _render(self._map(json.loads(body), self.open_value))

    def reseal_body(self, body: str) -> str:
        """Encrypted again with the current key (rotation); plaintext secrets get sealed."""
        fernet = self.fernet()

        def again(value: str) -> str:
            if value.startswith(PREFIX):
                return PREFIX + fernet.rotate(value[len(PREFIX):].encode("ascii")).decode("ascii")
            return self.seal_value(value)

        with contextlib.suppress(InvalidToken):
            return _render(self._map(json.loads(body), again))
        raise SecretKeyError(f"a stored config secret does not open with the keys in {self.key_file}")

    @staticmethod
    def _map(doc: dict[str, Any], fn: Any) -> dict[str, Any]:
        for key in SECRET_CONFIG_KEYS:
            value = doc.get(key)
            if isinstance(value, str) and value:
                doc[key] = fn(value)
        return doc


def redacted(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy with every secret value shown as `***` (what `config show` prints by default)."""
    out = dict(doc)
    for key in SECRET_CONFIG_KEYS:
        if isinstance(out.get(key), str) and out[key]:
            out[key] = "***"
    return out
