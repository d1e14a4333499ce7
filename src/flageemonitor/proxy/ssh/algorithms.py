"""Algorithm lists offered to endpoints.

Modern algorithms come first, so a current OpenSSH negotiates them; curve25519 leads the key
exchanges because it is the cheapest on the controller (hybrid post-quantum exchanges cost far
more CPU per connection at fan-out scale). With `legacy` the SHA-1 and CBC algorithms that
Slackware-era OpenSSH speaks are appended AFTER the modern ones: they are only chosen when the
endpoint offers nothing better.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncssh.encryption import get_default_encryption_algs, get_encryption_algs
from asyncssh.kex import get_default_kex_algs, get_kex_algs
from asyncssh.mac import get_default_mac_algs, get_mac_algs

PREFERRED_KEX = ("curve25519-sha256", "curve25519-sha256@libssh.org")
LEGACY_KEX = ("diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1", "diffie-hellman-group1-sha1")
LEGACY_CIPHERS = ("aes128-cbc", "aes192-cbc", "aes256-cbc", "3des-cbc")
LEGACY_MACS = ("hmac-sha1", "hmac-sha1-96")
# ssh-rsa (SHA-1 signatures) is part of asyncssh's default host-key and signature lists already.


@dataclass(frozen=True)
class AlgorithmSet:
    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]


def _names(algs: list[bytes]) -> list[str]:
    return [a.decode("ascii") for a in algs]


def _ordered(preferred: tuple[str, ...], rest: list[str], extra: tuple[str, ...],
             available: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in (*preferred, *rest, *extra):
        if name in available and name not in out:
            out.append(name)
    return tuple(out)


def algorithms(legacy: bool) -> AlgorithmSet:
    """The key exchange, cipher and MAC lists, modern first, legacy appended when asked."""
    kex_default = [k for k in _names(get_default_kex_algs()) if not k.startswith("gss-")]
    if not legacy:
        kex_default = [k for k in kex_default if "sha1" not in k]
    kex = _ordered(PREFERRED_KEX, kex_default, LEGACY_KEX if legacy else (), _names(get_kex_algs()))
    ciphers = _ordered((), _names(get_default_encryption_algs()), LEGACY_CIPHERS if legacy else (),
                       _names(get_encryption_algs()))
    macs_default = _names(get_default_mac_algs())
    if not legacy:
        macs_default = [m for m in macs_default if "sha1" not in m]
    macs = _ordered((), macs_default, LEGACY_MACS if legacy else (), _names(get_mac_algs()))
    return AlgorithmSet(kex=kex, ciphers=ciphers, macs=macs)
