"""Which keys this proxy trusts to sign its config, and how it follows a key rotation.

Rules:
- `FLAGEEMONITOR_CONFIG_KEYS` (`keyid:base64,keyid:base64`, written by the installer) pins keys.
  While it is unset or empty no key is pinned and unsigned configs are accepted: proxies
  installed before configs were signed keep working until they are given a key.
- Once a key is pinned, a config is accepted only with a valid signature by a trusted key.
- The server's key list (`<config URL>/keys`) is learned only when it is signed by a key trusted
  at that moment; it is stored as `config_keys.json` beside the config and then replaces the
  pinned set: a new key becomes trusted through the old one during the overlap, and a retired key
  stops being trusted once a list without it has been learned. Changing the pins (re-running the
  installer, editing the env file) discards what was learned: the operator's pins win.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from flageemonitor.core import env
from flageemonitor.core.atomic import atomic_write
from flageemonitor.core.signing import PublicKey, SigningError, format_pinned, parse_key_list, parse_pinned, verify

LEARNED_NAME = "config_keys.json"


class Trust:
    def __init__(self, directory: Path, pinned_text: str | None) -> None:
        self.path = directory / LEARNED_NAME
        self.pinned_text = pinned_text or ""

    @classmethod
    def from_env(cls, directory: Path, environ: Mapping[str, str] | None = None) -> Trust:
        return cls(directory, env.get("CONFIG_KEYS", environ=environ))

    def pins(self) -> dict[str, PublicKey]:
        """The pinned keys; raises SigningError when FLAGEEMONITOR_CONFIG_KEYS is malformed."""
        return parse_pinned(self.pinned_text)

    def _pins_form(self) -> str:
        return format_pinned(sorted(self.pins().values(), key=lambda k: k.id))

    def trusted(self) -> dict[str, PublicKey]:
        """The learned key list while the pins are the ones it was learned under, else the pins."""
        pins = self.pins()
        if not pins:
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="ascii"))
            if isinstance(doc, dict) and doc.get("pinned") == self._pins_form():
                learned = parse_pinned(str(doc.get("trusted", "")))
                if learned:
                    return learned
        except (OSError, ValueError, SigningError):
            pass  # missing or damaged: the pins alone
        return pins

    def learn(self, body: bytes, header: str | None) -> dict[str, PublicKey]:
        """Accept the server's key list if a trusted key signed it; returns the new trusted set.
        Raises SigningError saying why the list was refused (OSError if it cannot be stored)."""
        try:
            verify(body, header, self.trusted())
        except SigningError as exc:
            raise SigningError(f"the server's key list was refused: {exc}") from None
        keys = parse_key_list(body)
        if keys != self.trusted():
            doc = {"pinned": self._pins_form(), "trusted": format_pinned(list(keys.values()))}
            atomic_write(self.path, (json.dumps(doc, indent=2) + "\n").encode("ascii"), mode=0o600)
        return keys
