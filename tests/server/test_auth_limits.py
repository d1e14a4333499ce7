"""The failure budget of an address, read as a sliding window over two fixed windows."""

from __future__ import annotations

import itertools

import pytest

from flageemonitor.server.services.auth_limits import Failures

W = 60


def _later(failures: Failures, now: float, then: float) -> Failures:
    """The same counts seen at `then` (no new failures): windows passed shift them back."""
    passed = int(then // W) - int(now // W)
    if passed == 0:
        return failures
    return Failures(0, failures.current) if passed == 1 else Failures(0, 0)


@pytest.mark.parametrize("limit", [1, 5, 20])
def test_inside_one_window_the_limit_is_the_count(limit: int) -> None:
    for offset in (0.0, 30.0, 59.99):
        assert not Failures(limit - 1).limited(limit, 600 + offset, W)
        assert Failures(limit).limited(limit, 600 + offset, W)


def test_failures_just_before_a_window_edge_still_count_just_after_it() -> None:
    # one failure at 59.9 s, the next request at 60.1 s: fixed windows alone would forget it
    assert Failures(0, 1).limited(1, 60.1, W)
    # twice the limit can no longer be spent around an edge: 20 before it leave no room after it
    assert Failures(0, 20).limited(20, 61.0, W)
    # and the previous window's share fades: 20 x (58/60) rounds below the limit of 20
    assert not Failures(0, 20).limited(20, 62.0, W)
    assert not Failures(3, 20).limited(20, 119.0, W)


@pytest.mark.parametrize(("current", "previous", "limit", "offset"), [
    case for case in itertools.product((0, 1, 4, 5, 20, 37), (0, 1, 5, 20, 64), (1, 5, 20), (0.0, 0.4, 17.5, 59.9))
])
def test_retry_after_is_when_the_limit_lifts_to_the_second(current: int, previous: int, limit: int,
                                                          offset: float) -> None:
    failures, now = Failures(current, previous), 6000 + offset
    retry = failures.retry_after(limit, now, W)
    assert retry >= 1
    if not failures.limited(limit, now, W):
        return
    assert not _later(failures, now, now + retry).limited(limit, now + retry, W)
    if retry > 1:  # not a whole second too long (the crossing itself may round either way)
        earlier = now + retry - 1 - 1e-3
        assert _later(failures, now, earlier).limited(limit, earlier, W)
