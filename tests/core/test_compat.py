"""Compatibility matrix matching and the warn/enforce outcome."""

from __future__ import annotations

import pytest

from flageemonitor.core import compat
from flageemonitor.core.catalog import Level
from flageemonitor.core.compat import CompatMode
from flageemonitor.core.facts import EndpointFacts


@pytest.mark.parametrize(
    ("pattern", "version", "expected"),
    [
        ("13.x", "13.37", True),
        ("13.x", "13.0", True),
        ("13.x", "13", True),
        ("13.x", "14.2", False),
        ("13.x", "130.1", False),
        ("18.04+", "18.04", True),
        ("18.04+", "18.10", True),
        ("18.04+", "24.04", True),
        ("18.04+", "16.04", False),
        ("18.04+", "18.1", False),  # 18.1 is not 18.10: compared part by part, 1 < 4
        ("14.04", "14.04", True),
        ("14.04", "14.04.6", True),
        ("14.04", "14.041", False),
        ("14.04", "", False),
        ("", "14.04", False),
    ],
)
def test_version_patterns(pattern: str, version: str, expected: bool) -> None:
    assert compat.version_matches(pattern, version) is expected


@pytest.mark.parametrize(
    ("facts", "level"),
    [
        (EndpointFacts("slackware", "13.37", "i686"), Level.L2),
        (EndpointFacts("ubuntu", "14.04", "i686"), Level.L2),
        (EndpointFacts("ubuntu", "22.04", "x86_64"), Level.L1),
        (EndpointFacts("ubuntu", "22.04", "i686"), Level.L2),
        (EndpointFacts("mint", "21.3", "x86_64"), Level.L1),
        (EndpointFacts("mint", "17.3", "i686"), Level.L2),
        (EndpointFacts("mint", "19.1", "x86_64"), None),
        (EndpointFacts("mint", "21.3", "i686"), None),
        (EndpointFacts("debian", "12", "x86_64"), None),
        (EndpointFacts("unknown", "", "x86_64"), None),
    ],
)
def test_matrix_levels(facts: EndpointFacts, level: Level | None) -> None:
    assert compat.match_level(facts) is level


def test_mode_precedence_cli_then_config_then_warn() -> None:
    assert compat.effective_mode("enforce", "off") is CompatMode.ENFORCE
    assert compat.effective_mode(None, " Enforce ") is CompatMode.ENFORCE
    assert compat.effective_mode(None, "bogus") is CompatMode.WARN
    assert compat.effective_mode(None, None) is CompatMode.WARN


UNKNOWN = EndpointFacts("debian", "12", "x86_64")
SLACK = EndpointFacts("slackware", "13.37", "x86_64")
UBUNTU = EndpointFacts("ubuntu", "22.04", "x86_64")


def test_unknown_environment_warns_in_warn_and_blocks_in_enforce() -> None:
    warn = compat.decide(UNKNOWN, Level.L2, CompatMode.WARN)
    assert warn.allowed and warn.level is None and warn.reason.startswith("warning:")
    enforce = compat.decide(UNKNOWN, Level.L2, CompatMode.ENFORCE)
    assert not enforce.allowed and "not in the compatibility matrix" in enforce.reason


def test_level_below_minimum_blocks_only_in_enforce() -> None:
    # an L1-only action on Slackware (L2)
    assert compat.decide(SLACK, Level.L1, CompatMode.WARN).allowed
    blocked = compat.decide(SLACK, Level.L1, CompatMode.ENFORCE)
    assert not blocked.allowed and blocked.level is Level.L2 and "needs L1" in blocked.reason


def test_supported_environment_is_allowed_in_every_mode() -> None:
    for mode in CompatMode:
        decision = compat.decide(UBUNTU, Level.L2, mode)
        assert decision.allowed


def test_off_allows_even_unknown_environments() -> None:
    assert compat.decide(UNKNOWN, Level.L1, CompatMode.OFF).allowed
