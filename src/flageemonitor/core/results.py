"""The per-host result model and the run report (`--json` shape).

Statuses: `ok` succeeded without changing the endpoint ("unchanged" in the detail), `changed`
succeeded and changed it, `skipped` the action decided not to act, or a staged run stopped
before the host's batch and never contacted it (the detail says why),
`planned` a dry run's answer; the failures are `failed`, `unreachable`, `auth_failed` and
`timeout`. Each host also carries `changed` (did, or in a dry run would, the endpoint change) and
`changes` (the typed changes applied, or planned), as Ansible's ok/changed result does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    AUTH_FAILED = "auth_failed"
    TIMEOUT = "timeout"
    SKIPPED_ROLLOUT = "skipped_rollout"
    BLOCKED_COMPAT = "blocked_compat"
    PLANNED = "planned"

    @property
    def is_failure(self) -> bool:
        return self in FAILURES


FAILURES = frozenset({Status.FAILED, Status.UNREACHABLE, Status.AUTH_FAILED, Status.TIMEOUT})


@dataclass
class HostResult:
    host: str
    ip: str
    status: Status
    facts: dict[str, Any] | None = None
    duration_s: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # action-specific evidence
    changed: bool = False  # the endpoint changed (in a dry run: would change)
    changes: list[dict[str, Any]] = field(default_factory=list)  # applied, or planned in a dry run

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "host": self.host,
            "ip": self.ip,
            "status": self.status.value,
            "changed": self.changed,
            "changes": self.changes,
            "facts": self.facts,
            "duration_s": round(self.duration_s, 3),
            "detail": self.detail,
        }
        if self.data:
            out["data"] = self.data
        return out


@dataclass
class RunReport:
    requested: str
    canonical: str
    provider: str
    action_version: str
    dry_run: bool
    hosts: list[HostResult] = field(default_factory=list)
    local: dict[str, Any] | None = None  # result of a local (proxy-side) action
    local_failed: bool = False
    started_at: str = ""
    duration_s: float = 0.0
    prepared: dict[str, Any] = field(default_factory=dict)  # what the action's per-run preparation found
    staging: dict[str, Any] | None = None  # a staged run: its batches and stop rule (core.staging)
    stopped_after_batch: int | None = None  # set when the stop rule ended the run before its last batch

    def summary(self) -> dict[str, Any]:
        """Counts per status, plus `changed` = hosts whose endpoint changed (in a dry run: would
        change; a failed host whose changes were rolled back does not count) and `failures`."""
        counts = Counter(r.status.value for r in self.hosts)
        out: dict[str, Any] = {"total": len(self.hosts)}
        for status in Status:
            out[status.value] = counts.get(status.value, 0)
        out["changed"] = sum(1 for r in self.hosts if r.changed)
        out["failures"] = sum(1 for r in self.hosts if r.status.is_failure)
        if self.stopped_after_batch is not None:
            out["stopped_after_batch"] = self.stopped_after_batch
        out["duration_s"] = round(self.duration_s, 3)
        return out

    @property
    def failed(self) -> bool:
        return self.local_failed or self.stopped_after_batch is not None or any(
            r.status.is_failure for r in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": {
                "requested": self.requested,
                "canonical": self.canonical,
                "provider": self.provider,
                "version": self.action_version,
            },
            "dry_run": self.dry_run,
            "started_at": self.started_at,
            "summary": self.summary(),
            "hosts": [r.to_dict() for r in self.hosts],
        }
        if self.local is not None:
            out["local"] = self.local
        if self.prepared:
            out["prepared"] = self.prepared
        if self.staging is not None:
            out["staging"] = self.staging
        return out
