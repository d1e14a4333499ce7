"""Per-provider percentage rollout.

Formula (documented in the README):

    digest = SHA-256( "flageemonitor-rollout/v1|" + provider + "|" + identity )   (UTF-8)
    bucket = int(first 8 bytes of digest, big-endian) mod 100          -> 0..99
    in     = bucket < percentage

`identity` is the host's technical name, trimmed and lower-cased, so the bucket does not move
when the endpoint's IP or SSH user changes. SHA-256 is the same on every machine and process
(Python's `hash()` is salted per process and is never used). Because membership is
`bucket < percentage`, raising the percentage only ever adds hosts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SALT = "flageemonitor-rollout/v1"


@dataclass(frozen=True)
class RolloutDecision:
    provider: str
    bucket: int
    percentage: int

    @property
    def included(self) -> bool:
        return self.bucket < self.percentage


def bucket(provider: str, identity: str) -> int:
    text = f"{SALT}|{provider.strip().lower()}|{identity.strip().lower()}"
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def _as_pct(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        pct = int(str(value).strip().rstrip("%"))
    except ValueError:
        return None
    return max(0, min(100, pct))


def percentage(provider: str, config: Mapping[str, Any], default: int) -> int:
    """Rollout percentage for `provider`.

    Order: `PARAM_ROLLOUT_<PROVIDER>`, then `PARAM_PROVIDER_ROLLOUT[provider]` when it is a map,
    then `PARAM_PROVIDER_ROLLOUT` when it is a number (applies to every provider), then the
    provider's default (arius 100, others 0). Values are clamped to 0..100; an unparsable value
    is ignored and the next source is used.
    """
    name = provider.strip().lower()
    pct = _as_pct(config.get(f"PARAM_ROLLOUT_{name.upper()}"))
    if pct is not None:
        return pct
    table = config.get("PARAM_PROVIDER_ROLLOUT")
    if isinstance(table, Mapping):
        lowered = {str(k).strip().lower(): v for k, v in table.items()}
        pct = _as_pct(lowered.get(name))
        if pct is not None:
            return pct
    else:
        pct = _as_pct(table)
        if pct is not None:
            return pct
    return max(0, min(100, default))


def decide(provider: str, identity: str, config: Mapping[str, Any], default: int) -> RolloutDecision:
    return RolloutDecision(
        provider=provider,
        bucket=bucket(provider, identity),
        percentage=percentage(provider, config, default),
    )
