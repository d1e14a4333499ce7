"""The per-host facts cache in the state directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from flageemonitor.core.facts import EndpointFacts
from flageemonitor.core.hosts import Host
from flageemonitor.proxy.facts_cache import FactsCache, entry_name

HOST = Host.build("R1-LOJA001-PDV201", "10.0.0.5")
FACTS = EndpointFacts("ubuntu", "14.04", "i686", "i686", "os-release")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cached_facts_are_returned_until_the_ttl_expires(tmp_path: Path) -> None:
    clock = Clock(1000.0)
    cache = FactsCache(tmp_path, ttl=60, clock=clock)
    cache.put(HOST, FACTS)
    clock.now = 1059.0
    assert cache.get(HOST) == FACTS
    clock.now = 1060.0
    assert cache.get(HOST) is None


def test_a_host_moved_to_another_address_is_probed_again(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path, ttl=60)
    cache.put(HOST, FACTS)
    assert cache.get(replace(HOST, ip="10.0.0.6")) is None
    assert cache.get(replace(HOST, port=2222)) is None
    assert cache.get(HOST) == FACTS


def test_ttl_zero_disables_the_cache(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path, ttl=0)
    cache.put(HOST, FACTS)
    assert cache.get(HOST) is None
    assert list(tmp_path.iterdir()) == []


def test_corrupt_entry_is_ignored_not_fatal(tmp_path: Path) -> None:
    cache = FactsCache(tmp_path, ttl=60)
    cache.path(HOST).write_text("{not json")
    assert cache.get(HOST) is None
    cache.put(HOST, FACTS)
    assert cache.get(HOST) == FACTS
    assert [p.name for p in tmp_path.iterdir()] == [entry_name(HOST)]  # no temp file left


def test_entry_names_are_safe_and_distinct() -> None:
    odd = Host.build("../../etc/passwd", "10.0.0.1")
    assert "/" not in entry_name(odd)
    assert entry_name(Host.build("A B", "1.1.1.1")) != entry_name(Host.build("A_B", "1.1.1.1"))
