"""Staged runs: the hosts of a run in batches, and the rule that stops the run between batches.

Batches (`--batch SPEC`, or `batch` in a `PARAM_CRON_ACTIONS` entry):

- SPEC is `N` (hosts), `P%` (of the hosts the action will run on: rounded down, at least 1),
  `all` (one batch), or a comma list of those sizing the first, second... batch, the last item
  repeating until no host is left: `1,10%` is one host, then 10% at a time; `5%,100%` is a 5%
  canary, then the rest. A size larger than the hosts left is the hosts left.
- The hosts are those selected and inside the provider rollout, in name order; consecutive
  slices form the batches. (Hosts outside the rollout are never contacted and belong to no
  batch.)

The stop rule (`--max-fail-percent P`, P from 0 to 100, decimals allowed), checked after every
batch but the last, over every host of the batches done so far (cumulative, not per batch):

- *attempted* = hosts ending `ok`, `changed`, `failed`, `unreachable`, `auth_failed` or `timeout`;
  *failures* = the last four. `skipped` (the action chose not to act), `blocked_compat`,
  `skipped_rollout` and `planned` count in neither: they say nothing about whether the change
  works.
- The run stops when failures x 100 > P x attempted: the failed share must EXCEED P, equal
  continues (exact arithmetic, no rounding). So 0 stops after the first batch with a failure,
  100 never stops, and nothing attempted yet never stops.
- Stopping: the hosts of the later batches are reported `skipped` with the reason and never
  contacted; the run is failed (exit 1).

Defaults when the operator says nothing:

- an action that changes endpoints (`changes_endpoint: true`, remote): `5%,100%` (a canary of
  5%, at least one host, then the rest) with P = 0 (any failure in the canary stops the run);
- `--batch` given without P: P = 0 for an action that changes endpoints, 100 (never stop,
  batches only pace the run) for a read-only one;
- a read-only remote action: one batch; P without `--batch` is refused (it could never apply);
- a local action runs once in the proxy: `--batch` and P are refused.

References: Ansible's `max_fail_percentage` also needs the share to exceed the value, but
counts per batch (the batch's failed hosts over its size) and leaves unreachable hosts out; AWS
IoT jobs' abort criteria count cumulatively, abort when the share reaches the threshold, and
wait for a minimum number of executed things. Here: cumulative, strictly above, unreachable
counted (a canary that could not be checked has not passed), the batch as the minimum sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, TypeVar

from flageemonitor.core.errors import ActionRefused
from flageemonitor.core.results import FAILURES, Status

T = TypeVar("T")

ALL = "all"
DEFAULT_BATCH = "5%,100%"  # actions that change endpoints: a 5% canary, then the rest
DEFAULT_MAX_FAIL_PERCENT = 0
SUCCESSES = frozenset({Status.OK, Status.CHANGED})
ATTEMPTED = SUCCESSES | FAILURES


class StagingRefused(ActionRefused):
    """`--batch` / `--max-fail-percent` that cannot apply to this action or are malformed."""


@dataclass(frozen=True)
class Step:
    """One item of a batch spec: a host count or a percentage of the hosts."""

    count: int | None = None
    percent: Fraction | None = None

    def size(self, total: int) -> int:
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return max(1, math.floor(total * self.percent / 100))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{_number(self.percent)}%"


@dataclass(frozen=True)
class BatchSpec:
    steps: tuple[Step, ...]

    @property
    def single(self) -> bool:
        """One batch whatever the number of hosts (`all`, `100%`)."""
        return len(self.steps) == 1 and self.steps[0].percent == 100

    def sizes(self, total: int) -> list[int]:
        """Batch sizes for `total` hosts: each step in turn, the last one repeating."""
        out: list[int] = []
        left = total
        while left > 0:
            step = self.steps[min(len(out), len(self.steps) - 1)]
            out.append(min(step.size(total), left))
            left -= out[-1]
        return out

    def split(self, items: Sequence[T]) -> list[list[T]]:
        out: list[list[T]] = []
        start = 0
        for size in self.sizes(len(items)):
            out.append(list(items[start:start + size]))
            start += size
        return out

    def __str__(self) -> str:
        return ALL if self.single else ",".join(str(s) for s in self.steps)


def parse_batch(value: str | int) -> BatchSpec:
    """`N`, `P%`, `all` or a comma list of `N` / `P%`; raises ValueError saying what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r}: expected N, P% or all")
    text = str(value).strip()
    if text.lower() == ALL:
        return BatchSpec((Step(percent=Fraction(100)),))
    items = [t.strip() for t in text.split(",")]
    if not text or any(not t for t in items):
        raise ValueError(f"{text!r}: expected N (hosts), P% (of the hosts) or all, or a comma list such as 1,10%")
    return BatchSpec(tuple(_step(t) for t in items))


def _step(text: str) -> Step:
    if text.endswith("%"):
        pct = _fraction(text[:-1].strip(), text)
        if not 0 < pct <= 100:
            raise ValueError(f"{text!r}: a batch percentage must be above 0 and at most 100")
        return Step(percent=pct)
    if not text.isdigit():
        raise ValueError(f"{text!r}: expected a number of hosts (N), a percentage (P%) or all")
    count = int(text)
    if count < 1:
        raise ValueError(f"{text!r}: a batch holds at least one host")
    return Step(count=count)


def parse_max_fail(value: str | float | int) -> Fraction:
    """A percentage from 0 to 100 (`10`, `12.5`, `"10%"`); raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r}: expected a percentage from 0 to 100")
    text = str(value).strip().removesuffix("%").strip()
    pct = _fraction(text, str(value))
    if not 0 <= pct <= 100:
        raise ValueError(f"{value!r}: expected a percentage from 0 to 100")
    return pct


def _fraction(text: str, original: str) -> Fraction:
    try:
        number = Fraction(text)  # exact: "33.3" is 333/10, not a binary float
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{original!r}: not a number") from None
    if "/" in text:
        raise ValueError(f"{original!r}: write a decimal number, not a fraction")
    return number


def _number(value: Fraction | None) -> str:
    """A percentage as typed: 5, 12.5."""
    if value is None:
        return ""
    if value.denominator == 1:
        return str(value.numerator)
    return format(float(value), "g")


@dataclass
class Tally:
    """Hosts of the batches done so far: attempted and failed (see the module docstring)."""

    attempted: int = 0
    failures: int = 0

    def add(self, statuses: Iterable[Status]) -> None:
        for status in statuses:
            if status in ATTEMPTED:
                self.attempted += 1
                self.failures += status in FAILURES

    def share(self) -> str:
        if not self.attempted:
            return "no host attempted"
        pct = format(round(100 * self.failures / self.attempted, 1), "g")
        return f"{self.failures} of {self.attempted} hosts attempted failed ({pct}%)"


@dataclass(frozen=True)
class StopRule:
    max_fail_percent: Fraction

    def exceeded(self, tally: Tally) -> bool:
        """Failed share strictly above the limit: failures x 100 > P x attempted."""
        return tally.failures * 100 > self.max_fail_percent * tally.attempted

    def __str__(self) -> str:
        if self.max_fail_percent >= 100:
            return "never stops (max-fail-percent 100)"
        return (f"stops before the next batch when more than {_number(self.max_fail_percent)}% of the hosts "
                "attempted so far failed (unreachable, auth_failed and timeout count as failed)")


@dataclass(frozen=True)
class Staging:
    """How one run is staged; `source` says who chose it: `request` (CLI or schedule) or
    `default` (an action that changes endpoints, nothing said)."""

    spec: BatchSpec
    rule: StopRule
    source: str

    def describe(self, sizes: Sequence[int]) -> str:
        batches = ", ".join(f"{n} host{'s' if n != 1 else ''}" for n in sizes) or "no host"
        origin = " (default for an action that changes endpoints: a canary, then the rest)" \
            if self.source == "default" else ""
        return f"batches {self.spec}{origin}: {batches}; {self.rule}"


def choose(batch: str | int | None, max_fail_percent: str | float | int | None, *, action: str,
           local: bool, changes_endpoint: bool) -> Staging | None:
    """The staging of a run of `action`, None for one batch. Raises StagingRefused for a value
    that is malformed or cannot apply (see the module docstring)."""
    given = [flag for flag, value in (("--batch", batch), ("--max-fail-percent", max_fail_percent))
             if value is not None]
    if local:
        if given:
            verb = "do" if len(given) > 1 else "does"
            raise StagingRefused(f"{action} runs once in the proxy (a local action): {' and '.join(given)} "
                                 f"{verb} not apply")
        return None
    spec = _parsed("--batch", parse_batch, batch)
    limit = _parsed("--max-fail-percent", parse_max_fail, max_fail_percent)
    if spec is None:
        if not changes_endpoint:
            if limit is not None:
                raise StagingRefused(f"--max-fail-percent needs --batch: {action} does not change endpoints "
                                     "and runs in one batch by default")
            return None
        if limit is None:
            return Staging(parse_batch(DEFAULT_BATCH), StopRule(Fraction(DEFAULT_MAX_FAIL_PERCENT)), "default")
        return Staging(parse_batch(DEFAULT_BATCH), StopRule(limit), "request")
    if spec.single:
        if limit is not None:
            raise StagingRefused("--max-fail-percent has nothing to stop with --batch all (one batch)")
        return None
    if limit is None:
        limit = Fraction(DEFAULT_MAX_FAIL_PERCENT if changes_endpoint else 100)
    return Staging(spec, StopRule(limit), "request")


def _parsed(flag: str, parse: Callable[[Any], T], value: Any) -> T | None:
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as exc:
        raise StagingRefused(f"{flag}: {exc}") from None


@dataclass
class BatchRecord:
    """One batch of a staged run, for the report."""

    hosts: list[str]
    ran: bool = False
    attempted: int = 0  # cumulative, after this batch
    failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"hosts": self.hosts, "ran": self.ran}
        if self.ran:
            out.update(attempted=self.attempted, failures=self.failures)
        return out


@dataclass
class StagedOutcome:
    """What a staged run did, batch by batch, and where and why it stopped."""

    staging: Staging
    batches: list[BatchRecord]
    tally: Tally = field(default_factory=Tally)
    stopped_after: int | None = None  # 1-based number of the last batch run, when the rule stopped the run
    reason: str = ""

    @classmethod
    def start(cls, staging: Staging, names: Sequence[str]) -> StagedOutcome:
        return cls(staging, [BatchRecord(batch) for batch in staging.spec.split(names)])

    def finish(self, index: int, statuses: Iterable[Status], *, may_stop: bool = True) -> bool:
        """Record batch `index` (0-based) as run; True when the run must stop before the next one."""
        record = self.batches[index]
        record.ran = True
        self.tally.add(statuses)
        record.attempted, record.failures = self.tally.attempted, self.tally.failures
        last = index + 1 >= len(self.batches)
        if not may_stop or last or not self.staging.rule.exceeded(self.tally):
            return False
        self.stopped_after = index + 1
        self.reason = (f"the run stopped after batch {index + 1} of {len(self.batches)}: {self.tally.share()}, "
                       f"more than --max-fail-percent {_number(self.staging.rule.max_fail_percent)}")
        return True

    @property
    def not_run(self) -> int:
        return sum(len(b.hosts) for b in self.batches if not b.ran)

    def summary(self) -> str:
        """One line: the batches and the rule, and where the run stopped."""
        text = self.staging.describe([len(b.hosts) for b in self.batches])
        if self.stopped_after is not None:
            text += f"; {self.reason}; {self.not_run} host(s) not contacted"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": str(self.staging.spec),
            "max_fail_percent": float(self.staging.rule.max_fail_percent),
            "source": self.staging.source,
            "rule": str(self.staging.rule),
            "batches": [b.to_dict() for b in self.batches],
            "stopped_after_batch": self.stopped_after,
            "stop_reason": self.reason,
        }
