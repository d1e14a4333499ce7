"""Signed configs: the Ed25519 signature format the server writes and the proxy checks.

Rules:
- a signature covers the exact bytes of the served body, nothing else;
- it travels in the `X-FlageeMonitor-Signature` header as `keyid=<hex>; sig=<base64>`, several
  entries separated by `,` (the key list carries one per valid key, a config one);
- a key id is the first 8 bytes of SHA-256 of the raw 32-byte public key, in hex (16 chars);
- pinned keys are written `keyid:base64,keyid:base64` (`FLAGEEMONITOR_CONFIG_KEYS`); an id that
  does not match its key is refused, so a typo cannot pin a key under another key's name;
- the key list (`GET .../bot/config/keys`) is a JSON document naming its purpose, so it can never
  be mistaken for a config (nor a config for it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from flageemonitor.core.errors import FlageeError

HEADER = "X-FlageeMonitor-Signature"
KEY_LIST_PURPOSE = "flageemonitor config signing keys"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_ENTRY = re.compile(r"^\s*keyid=([0-9a-f]{16})\s*;\s*sig=([A-Za-z0-9+/]{86}==)\s*$")


class SigningError(FlageeError):
    """A malformed key, key list or signature header; the message says which."""


@dataclass(frozen=True)
class PublicKey:
    id: str
    raw: bytes  # 32 bytes

    @classmethod
    def of(cls, raw: bytes) -> PublicKey:
        if len(raw) != 32:
            raise SigningError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
        return cls(key_id(raw), raw)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.raw).decode("ascii")

    @property
    def pinned(self) -> str:
        """The `keyid:base64` form of FLAGEEMONITOR_CONFIG_KEYS."""
        return f"{self.id}:{self.b64}"

    def verifies(self, body: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, body)
        except InvalidSignature:
            return False
        return True


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).digest()[:8].hex()


def public_of(private: Ed25519PrivateKey) -> PublicKey:
    return PublicKey.of(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign_entry(private: Ed25519PrivateKey, body: bytes) -> str:
    """One header entry: `keyid=<id>; sig=<base64>`."""
    sig = base64.b64encode(private.sign(body)).decode("ascii")
    return f"keyid={public_of(private).id}; sig={sig}"


def parse_header(value: str | None) -> list[tuple[str, bytes]]:
    """The (key id, signature) entries of a header; [] when absent. Raises SigningError when malformed."""
    if value is None or not value.strip():
        return []
    out = []
    for part in value.split(","):
        m = _ENTRY.match(part)
        if m is None:
            raise SigningError(f"malformed {HEADER} header entry {part.strip()[:60]!r}")
        out.append((m.group(1), base64.b64decode(m.group(2))))
    return out


def verify(body: bytes, header: str | None, keys: Mapping[str, PublicKey]) -> PublicKey:
    """The trusted key that signed `body`; raises SigningError saying why none did."""
    entries = parse_header(header)
    if not entries:
        raise SigningError("it is not signed")
    known = [(kid, sig) for kid, sig in entries if kid in keys]
    if not known:
        names = ", ".join(kid for kid, _ in entries)
        raise SigningError(f"it is signed by key {names}, which this proxy does not trust")
    for kid, sig in known:
        if keys[kid].verifies(body, sig):
            return keys[kid]
    raise SigningError(f"its signature by key {known[0][0]} does not match the body (altered in transit?)")


def parse_pinned(text: str) -> dict[str, PublicKey]:
    """`keyid:base64,keyid:base64` -> keys by id. Raises SigningError naming the bad entry."""
    keys: dict[str, PublicKey] = {}
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        if not sep or not _KEY_ID.match(kid):
            raise SigningError(f"{item[:40]!r} is not keyid:base64")
        key = PublicKey.of(_b64(b64, item))
        if key.id != kid:
            raise SigningError(f"key id {kid} does not match its key (which is {key.id})")
        keys[kid] = key
    return keys


def format_pinned(keys: list[PublicKey]) -> str:
    return ",".join(k.pinned for k in keys)


def key_list_body(keys: list[PublicKey], signing: PublicKey) -> bytes:
    """The served key list: every valid public key, and which one signs configs now."""
    doc = {"purpose": KEY_LIST_PURPOSE, "signing": signing.id,
           "keys": [{"id": k.id, "public_key": k.b64} for k in keys]}
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def parse_key_list(body: bytes) -> dict[str, PublicKey]:
    """Keys by id from a key list body; raises SigningError when it is not one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise SigningError("the key list is not JSON") from None
    if not isinstance(doc, dict) or doc.get("purpose") != KEY_LIST_PURPOSE or not isinstance(doc.get("keys"), list):
        raise SigningError("the document is not a config signing key list")
    keys: dict[str, PublicKey] = {}
    for entry in doc["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
            raise SigningError("a key list entry has no public_key")
        key = PublicKey.of(_b64(entry["public_key"], "key list entry"))
        if entry.get("id") != key.id:
            raise SigningError(f"key list entry {str(entry.get('id'))[:20]!r} does not match its key")
        keys[key.id] = key
    if not keys:
        raise SigningError("the key list is empty")
    return keys


def _b64(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningError(f"{where[:40]!r}: the key is not base64") from None
