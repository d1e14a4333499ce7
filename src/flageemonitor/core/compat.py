"""Endpoint compatibility: match facts against the matrix, compare with an action's level.

Patterns: `13.x` = major version 13; `18.04+` = at least 18.04 compared numerically part by
part (so 18.10 and 24.04 pass, 16.04 does not); anything else = that version or a point release
of it (`14.04` matches `14.04.6`). An empty version never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from flageemonitor import contracts
from flageemonitor.core.catalog import Level
from flageemonitor.core.facts import EndpointFacts


class CompatMode(StrEnum):
    OFF = "off"
    WARN = "warn"
    ENFORCE = "enforce"


@dataclass(frozen=True)
class MatrixRow:
    distro: str
    versions: tuple[str, ...]
    arch: tuple[str, ...]
    level: Level


@dataclass(frozen=True)
class CompatDecision:
    level: Level | None  # None: the environment is not in the matrix
    required: Level
    mode: CompatMode
    allowed: bool
    reason: str


def _numbers(version: str) -> tuple[int, ...] | None:
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", version)
    if not match:
        return None
    return tuple(int(p) for p in match.group(1).split("."))


def version_matches(pattern: str, version: str) -> bool:
    pattern, version = pattern.strip(), version.strip()
    if not pattern or not version:
        return False
    if pattern.lower().endswith(".x"):
        want, have = _numbers(pattern[:-2]), _numbers(version)
        return want is not None and have is not None and have[: len(want)] == want
    if pattern.endswith("+"):
        want, have = _numbers(pattern[:-1]), _numbers(version)
        if want is None or have is None:
            return False
        width = max(len(want), len(have))
        return have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want))
    return version == pattern or version.startswith(pattern + ".")


def parse_matrix(doc: dict[str, Any]) -> tuple[MatrixRow, ...]:
    return tuple(
        MatrixRow(
            distro=str(r["distro"]).lower(),
            versions=tuple(str(v) for v in r["versions"]),
            arch=tuple(str(a) for a in r["arch"]),
            level=Level(r["level"]),
        )
        for r in doc["matrix"]
    )


@cache
def load_matrix() -> tuple[MatrixRow, ...]:
    return parse_matrix(contracts.load_yaml(contracts.MATRIX_FILE))


def match_level(facts: EndpointFacts, matrix: tuple[MatrixRow, ...] | None = None) -> Level | None:
    for row in load_matrix() if matrix is None else matrix:
        if row.distro == facts.distro and facts.arch in row.arch and any(
            version_matches(p, facts.version) for p in row.versions
        ):
            return row.level
    return None


def parse_mode(value: object) -> CompatMode | None:
    """A mode from a CLI or config value; None when absent or not one of off/warn/enforce."""
    if value is None:
        return None
    text = str(value).strip().lower()
    try:
        return CompatMode(text)
    except ValueError:
        return None


def effective_mode(cli: object, config_value: object) -> CompatMode:
    """`--compat-mode` > config `PARAM_COMPATIBILITY_MODE` > warn."""
    return parse_mode(cli) or parse_mode(config_value) or CompatMode.WARN


def describe(facts: EndpointFacts) -> str:
    return f"{facts.distro} {facts.version or '?'} {facts.arch}"


def decide(facts: EndpointFacts, required: Level, mode: CompatMode,
           matrix: tuple[MatrixRow, ...] | None = None) -> CompatDecision:
    level = match_level(facts, matrix)
    if mode is CompatMode.OFF:
        return CompatDecision(level, required, mode, True, "compatibility guard off")
    if level is None:
        reason = f"environment not in the compatibility matrix ({describe(facts)})"
    elif level.rank < required.rank:
        reason = f"{describe(facts)} is {level.value}, action needs {required.value} or better"
    else:
        return CompatDecision(level, required, mode, True,
                              f"{describe(facts)} is {level.value} (needs {required.value})")
    if mode is CompatMode.WARN:
        return CompatDecision(level, required, mode, True, "warning: " + reason)
    return CompatDecision(level, required, mode, False, reason)
