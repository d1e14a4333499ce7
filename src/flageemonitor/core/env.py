"""Environment variables with their legacy `ARIUSMONITOR_` twins.

Values written by `docker run --env-file` may keep surrounding quotes (`"America/Sao_Paulo"`);
the original broke on them, so every read strips one matching pair of quotes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

PREFIX = "FLAGEEMONITOR_"
LEGACY_PREFIX = "ARIUSMONITOR_"
DEFAULT_STATE_DIR = "/flageemonitor/state"

# names whose legacy twin does not follow the plain prefix swap
_LEGACY_ALIASES: dict[str, tuple[str, ...]] = {
    "API_BASE": ("ARIUSMONITOR_API_BASE", "ARIUSMONITOR_API_URL"),
}


def strip_quotes(value: str) -> str:
    """Remove whitespace and one pair of matching surrounding quotes."""
    v = value.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        v = v[1:-1].strip()
    return v


def get(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Read `FLAGEEMONITOR_<name>`, else its `ARIUSMONITOR_` twin; empty counts as unset."""
    env = os.environ if environ is None else environ
    candidates = (PREFIX + name, *_LEGACY_ALIASES.get(name, (LEGACY_PREFIX + name,)))
    for key in candidates:
        raw = env.get(key)
        if raw is not None:
            value = strip_quotes(raw)
            if value:
                return value
    return default


def get_plain(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """Read an unprefixed variable (`TZ`, `RUN_MODE`) with quotes stripped."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None:
        return default
    value = strip_quotes(raw)
    return value or default


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    return Path(get("STATE_DIR", DEFAULT_STATE_DIR, environ) or DEFAULT_STATE_DIR)


def truthy(value: object) -> bool:
    """The original's bool-ish reading: 1, true, yes, y, on (any case) are true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "y", "on"}
    return False
