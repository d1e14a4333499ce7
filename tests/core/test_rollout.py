"""Rollout buckets are sticky, portable and monotonic in the percentage."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flageemonitor.core import rollout

HOSTS = [f"REDE1-LOJA{loja:03d}-PDV{pdv}" for loja in range(1, 21) for pdv in range(201, 211)]


def test_bucket_matches_the_documented_formula() -> None:
    import hashlib

    name = "REDE1-LOJA001-PDV201"
    digest = hashlib.sha256(b"flageemonitor-rollout/v1|zanthus|rede1-loja001-pdv201").digest()
    assert rollout.bucket("zanthus", name) == int.from_bytes(digest[:8], "big") % 100


def test_bucket_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from flageemonitor.core import rollout;"
        f"print(','.join(str(rollout.bucket('zanthus', h)) for h in {HOSTS[:50]!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert out == ",".join(str(rollout.bucket("zanthus", h)) for h in HOSTS[:50])


def test_bucket_ignores_case_and_spaces_of_the_identity() -> None:
    assert rollout.bucket("arius", " rede1-loja001-pdv201 ") == rollout.bucket("ARIUS", "REDE1-LOJA001-PDV201")


def test_raising_the_percentage_never_drops_a_host() -> None:
    previous: set[str] = set()
    for pct in range(0, 101, 5):
        config = {"PARAM_ROLLOUT_ZANTHUS": pct}
        current = {h for h in HOSTS if rollout.decide("zanthus", h, config, 0).included}
        assert previous <= current
        previous = current
    assert previous == set(HOSTS)


def test_percentage_splits_a_fleet_roughly_evenly() -> None:
    included = [h for h in HOSTS if rollout.decide("zanthus", h, {"PARAM_ROLLOUT_ZANTHUS": 20}, 0).included]
    assert 20 <= len(included) <= 60  # 200 hosts at 20%: expect about 40


@pytest.mark.parametrize(
    ("config", "provider", "default", "expected"),
    [
        ({}, "arius", 100, 100),
        ({}, "zanthus", 0, 0),
        ({"PARAM_ROLLOUT_ZANTHUS": "35"}, "zanthus", 0, 35),
        ({"PARAM_ROLLOUT_ZANTHUS": 35, "PARAM_PROVIDER_ROLLOUT": {"zanthus": 80}}, "zanthus", 0, 35),
        ({"PARAM_PROVIDER_ROLLOUT": {"Zanthus": 80}}, "zanthus", 0, 80),
        ({"PARAM_PROVIDER_ROLLOUT": {"zanthus": 80}}, "arius", 100, 100),
        ({"PARAM_PROVIDER_ROLLOUT": 10}, "arius", 100, 10),
        ({"PARAM_PROVIDER_ROLLOUT": 150}, "zanthus", 0, 100),
        ({"PARAM_ROLLOUT_ZANTHUS": -4}, "zanthus", 0, 0),
        ({"PARAM_ROLLOUT_ZANTHUS": "lots"}, "zanthus", 0, 0),
        ({"PARAM_ROLLOUT_ZANTHUS": "50%"}, "zanthus", 0, 50),
    ],
)
def test_percentage_lookup_order(config: dict[str, object], provider: str, default: int, expected: int) -> None:
    assert rollout.percentage(provider, config, default) == expected


def test_zero_percent_includes_nobody_and_hundred_includes_everybody() -> None:
    assert not any(rollout.decide("zanthus", h, {}, 0).included for h in HOSTS)
    assert all(rollout.decide("arius", h, {}, 100).included for h in HOSTS)
