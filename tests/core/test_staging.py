"""Staged runs, the pure part: batch arithmetic, the stop rule and the defaults (core/staging.py)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from flageemonitor.core.results import FAILURES, Status
from flageemonitor.core.staging import (
    DEFAULT_BATCH,
    StagedOutcome,
    Staging,
    StagingRefused,
    StopRule,
    Tally,
    choose,
    parse_batch,
    parse_max_fail,
)


# ---- batch specs
@pytest.mark.parametrize(("text", "normal"), [
    ("1", "1"), (" 10 ", "10"), (7, "7"), ("5%", "5%"), ("12.5%", "12.5%"), ("all", "all"), ("ALL", "all"),
    ("100%", "all"), ("1,10%", "1,10%"), ("5%, 100%", "5%,100%"), ("2,2,50%", "2,2,50%"), ("0.5%", "0.5%"),
])
def test_batch_specs_parse_and_print_back(text: str | int, normal: str) -> None:
    assert str(parse_batch(text)) == normal


@pytest.mark.parametrize(("text", "says"), [
    ("0", "at least one host"), ("-1", "a number of hosts"), ("0%", "above 0"), ("101%", "at most 100"),
    ("x", "a number of hosts"), ("", "comma list"), ("5%,", "comma list"), (",5", "comma list"),
    ("1.5", "a number of hosts"), ("1/2%", "not a fraction"), ("abc%", "not a number"), (True, "expected"),
    ("nan%", "not a number"),
])
def test_bad_batch_specs_say_what_is_wrong(text: str | int, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_batch(text)


def _percent_size(total: int, pct: Fraction) -> int:
    """P% of `total`, rounded down, at least one (integer arithmetic only)."""
    return max(1, (total * pct.numerator) // (100 * pct.denominator))


SPECS = ["1", "2", "3", "7", "50", "1%", "5%", "12.5%", "33%", "50%", "99%", "all", "1,10%", "5%,100%",
         "2,3", "10%,1", "1,2,25%"]


@pytest.mark.parametrize("text", SPECS)
def test_batch_sizes_cover_every_host_once_in_spec_order(text: str) -> None:
    spec = parse_batch(text)
    for total in range(301):
        sizes = spec.sizes(total)
        assert sum(sizes) == total and all(n >= 1 for n in sizes), (text, total, sizes)
        for index, size in enumerate(sizes):
            step = spec.steps[min(index, len(spec.steps) - 1)]  # the last item repeats
            wanted = step.count if step.count is not None else _percent_size(total, step.percent or Fraction(0))
            left = total - sum(sizes[:index])
            assert size == min(wanted, left), (text, total, index, sizes)


def test_percentages_round_down_with_at_least_one_host() -> None:
    five = parse_batch("5%")
    assert five.sizes(1) == [1]
    assert five.sizes(19) == [1] * 19  # 0.95 hosts -> 1
    assert five.sizes(20)[0] == 1 and five.sizes(39)[0] == 1 and five.sizes(40)[0] == 2
    assert parse_batch("12.5%").sizes(16) == [2] * 8
    assert parse_batch("33%").sizes(10) == [3, 3, 3, 1]


def test_the_default_is_a_canary_then_the_rest() -> None:
    spec = parse_batch(DEFAULT_BATCH)
    assert spec.sizes(1) == [1]
    assert spec.sizes(10) == [1, 9]
    assert spec.sizes(100) == [5, 95]
    assert spec.sizes(3000) == [150, 2850]


def test_a_batch_larger_than_the_fleet_is_the_fleet() -> None:
    assert parse_batch("50").sizes(10) == [10]
    assert parse_batch("50").sizes(1) == [1]
    assert parse_batch("all").sizes(10) == [10]
    assert parse_batch("all").sizes(0) == []


def test_split_keeps_the_order() -> None:
    names = [f"h{i:02d}" for i in range(11)]
    batches = parse_batch("1,3").split(names)
    assert batches == [["h00"], ["h01", "h02", "h03"], ["h04", "h05", "h06"], ["h07", "h08", "h09"], ["h10"]]


# ---- the stop rule
@pytest.mark.parametrize(("text", "value"), [
    ("0", Fraction(0)), (25, Fraction(25)), (12.5, Fraction(25, 2)), ("33.3", Fraction(333, 10)),
    ("10%", Fraction(10)), ("100", Fraction(100)),
])
def test_max_fail_percent_parses_exactly(text: str | float, value: Fraction) -> None:
    assert parse_max_fail(text) == value


@pytest.mark.parametrize("bad", ["-1", "100.01", "x", "", True, "1/3", "inf"])
def test_max_fail_percent_outside_0_100_is_refused(bad: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_max_fail(bad)


def tally(attempted: int, failures: int) -> Tally:
    return Tally(attempted=attempted, failures=failures)


def test_equal_continues_above_stops() -> None:
    rule = StopRule(Fraction(25))
    assert not rule.exceeded(tally(4, 1))  # 25% = 25%: continues
    assert rule.exceeded(tally(6, 2))  # 33.3% > 25%: stops
    assert not rule.exceeded(tally(100, 25)) and rule.exceeded(tally(100, 26))
    third = StopRule(Fraction("33.3"))
    assert third.exceeded(tally(3, 1))  # 33.33...% > 33.3%: no float rounding decides it
    assert not StopRule(Fraction("33.4")).exceeded(tally(3, 1))


def test_zero_stops_at_the_first_failure_and_100_never_stops() -> None:
    for attempted in range(1, 60):
        for failures in range(attempted + 1):
            assert StopRule(Fraction(0)).exceeded(tally(attempted, failures)) == (failures > 0)
            assert not StopRule(Fraction(100)).exceeded(tally(attempted, failures))


def test_nothing_attempted_never_stops() -> None:
    for pct in (0, 50, 100):
        assert not StopRule(Fraction(pct)).exceeded(tally(0, 0))


@pytest.mark.parametrize("pct", ["0", "1", "10", "12.5", "25", "33.3", "50", "66.7", "99", "99.9", "100"])
def test_the_rule_is_the_failed_share_strictly_above_p(pct: str) -> None:
    rule = StopRule(Fraction(pct))
    for attempted in range(0, 80):
        for failures in range(attempted + 1):
            share_above = attempted > 0 and Fraction(100 * failures, attempted) > Fraction(pct)
            assert rule.exceeded(tally(attempted, failures)) == share_above, (pct, attempted, failures)


def test_which_statuses_count() -> None:
    counted = {s: Tally() for s in Status}
    for status, t in counted.items():
        t.add([status])
    attempted = {s for s, t in counted.items() if t.attempted}
    failed = {s for s, t in counted.items() if t.failures}
    assert attempted == {Status.OK, Status.CHANGED, Status.FAILED, Status.UNREACHABLE, Status.AUTH_FAILED,
                         Status.TIMEOUT}
    assert failed == set(FAILURES) == {Status.FAILED, Status.UNREACHABLE, Status.AUTH_FAILED, Status.TIMEOUT}
    # the action chose not to act, the guard refused, outside the rollout, a dry run: neither
    assert {Status.SKIPPED, Status.BLOCKED_COMPAT, Status.SKIPPED_ROLLOUT, Status.PLANNED}.isdisjoint(attempted)


# ---- a staged run, batch by batch
def simulate(statuses: list[Status], spec: str, pct: str, *, dry_run: bool = False) -> StagedOutcome:
    """What the pipeline does: each batch's statuses to `finish`, stop when it says so."""
    outcome = StagedOutcome.start(Staging(parse_batch(spec), StopRule(Fraction(pct)), "request"),
                                  [f"h{i}" for i in range(len(statuses))])
    start = 0
    for number, batch in enumerate(outcome.batches):
        done = statuses[start:start + len(batch.hosts)]
        start += len(batch.hosts)
        if outcome.finish(number, done, may_stop=not dry_run):
            break
    return outcome


def first_stop(statuses: list[Status], sizes: list[int], pct: Fraction) -> int | None:
    """The specification, written out: the first batch (not the last) after which the failed hosts
    of every batch so far are more than P% of the hosts attempted so far."""
    failed = attempted = 0
    start = 0
    for number, size in enumerate(sizes[:-1], start=1):
        for s in statuses[start:start + size]:
            attempted += s in {Status.OK, Status.CHANGED} | FAILURES
            failed += s in FAILURES
        start += size
        if attempted and Fraction(100 * failed, attempted) > pct:
            return number
    return None


def test_staged_runs_stop_where_the_specification_says_exhaustively() -> None:
    kinds = [Status.OK, Status.FAILED, Status.SKIPPED]  # success, failure, counted nowhere
    for n in range(1, 7):
        for statuses in itertools.product(kinds, repeat=n):
            for spec in ("1", "2", "3", "1,50%", "5%,100%"):
                sizes = parse_batch(spec).sizes(n)
                for pct in ("0", "20", "50", "100"):
                    outcome = simulate(list(statuses), spec, pct)
                    assert outcome.stopped_after == first_stop(list(statuses), sizes, Fraction(pct)), (
                        statuses, spec, pct)
                    ran = [b.ran for b in outcome.batches]
                    assert ran == [i < (outcome.stopped_after or len(sizes)) for i in range(len(sizes))]
                    assert outcome.not_run == sum(sizes[outcome.stopped_after or len(sizes):])


def test_the_share_is_cumulative_not_per_batch() -> None:
    ok, failed = Status.OK, Status.FAILED
    # batch 2 alone is 50% failed; the run so far is 1 of 4 = 25%: equal, so it continues
    outcome = simulate([ok, ok, failed, ok, ok, ok], "2", "25")
    assert outcome.stopped_after is None
    outcome = simulate([ok, ok, failed, ok, failed, ok], "2", "25")
    assert outcome.stopped_after is None  # 2 of 6 after the last batch: nothing is left to stop
    outcome = simulate([ok, ok, failed, ok, failed, ok, ok, ok], "2", "25")
    assert outcome.stopped_after == 3
    assert "2 of 6 hosts attempted failed (33.3%), more than --max-fail-percent 25" in outcome.reason


def test_the_last_batch_and_a_dry_run_never_stop() -> None:
    failed = Status.FAILED
    assert simulate([failed], "1", "0").stopped_after is None  # one host: nothing left to protect
    assert simulate([failed] * 5, "50", "0").stopped_after is None  # one batch larger than the fleet
    assert simulate([failed] * 5, "1", "0").stopped_after == 1
    assert simulate([failed] * 5, "1", "0", dry_run=True).stopped_after is None


def test_outcome_records_every_batch_for_the_report() -> None:
    outcome = simulate([Status.OK, Status.AUTH_FAILED, Status.OK, Status.OK], "1", "0")
    data = outcome.to_dict()
    assert data["stopped_after_batch"] == 2 and data["batch"] == "1" and data["max_fail_percent"] == 0
    assert data["batches"] == [
        {"hosts": ["h0"], "ran": True, "attempted": 1, "failures": 0},
        {"hosts": ["h1"], "ran": True, "attempted": 2, "failures": 1},
        {"hosts": ["h2"], "ran": False},
        {"hosts": ["h3"], "ran": False},
    ]
    assert "2 host(s) not contacted" in outcome.summary()


# ---- defaults and refusals
def staging_of(batch: str | None = None, pct: float | None = None, *, local: bool = False,
               changes: bool = True) -> Staging | None:
    return choose(batch, pct, action="act", local=local, changes_endpoint=changes)


def test_actions_that_change_endpoints_get_a_canary_and_stop_at_any_failure() -> None:
    stage = staging_of()
    assert stage is not None and str(stage.spec) == "5%,100%" and stage.rule.max_fail_percent == 0
    assert stage.source == "default"
    explicit = staging_of(pct=10)
    assert explicit is not None and str(explicit.spec) == "5%,100%" and explicit.rule.max_fail_percent == 10
    batched = staging_of("10")
    assert batched is not None and batched.rule.max_fail_percent == 0 and batched.source == "request"
    assert staging_of("all") is None  # the explicit opt-out: one batch


def test_read_only_actions_run_in_one_batch_unless_asked() -> None:
    assert staging_of(changes=False) is None
    paced = staging_of("10", changes=False)
    assert paced is not None and paced.rule.max_fail_percent == 100  # batches only pace the run
    limited = staging_of("10", 5, changes=False)
    assert limited is not None and limited.rule.max_fail_percent == 5
    with pytest.raises(StagingRefused, match="--max-fail-percent needs --batch: act does not change endpoints"):
        staging_of(pct=5, changes=False)


def test_local_actions_refuse_staging_and_are_unaffected() -> None:
    assert staging_of(local=True) is None
    with pytest.raises(StagingRefused, match=r"act runs once in the proxy \(a local action\): --batch does not apply"):
        staging_of("10", local=True)
    with pytest.raises(StagingRefused, match="--max-fail-percent does not apply"):
        staging_of(pct=10, local=True)
    with pytest.raises(StagingRefused, match="--batch and --max-fail-percent do not apply"):
        staging_of("1", 10, local=True)


def test_contradictions_and_bad_values_are_refused() -> None:
    with pytest.raises(StagingRefused, match="nothing to stop with --batch all"):
        staging_of("all", 10)
    with pytest.raises(StagingRefused, match="--batch: '0'"):
        staging_of("0")
    with pytest.raises(StagingRefused, match="--max-fail-percent: 150"):
        staging_of("1", 150)
