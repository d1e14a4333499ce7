"""The proxy -> server reporting contract (v1): check-in and run-report bodies.

One set of models for both sides: the server validates what it receives with them, the proxy
builds what it sends with them. Bounds are part of the contract: the proxy truncates details
itself; the server re-checks and refuses a body beyond them (422, naming the field).
Statuses are open-ended lowercase words (`ok`, `failed`, `unreachable`, ...) so that a newer
proxy's status never makes an older server drop a report.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_BODY_BYTES = 1024 * 1024  # on the wire (after Content-Encoding)
MAX_DECODED_BYTES = 8 * 1024 * 1024  # a gzip body, once decompressed
MAX_HOSTS = 5000
MAX_HOST_DETAIL = 500
MAX_LOCAL_DETAIL = 2000
MAX_LINE = 500  # one-line fields: last_error, error
DEFAULT_HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_KEY = "PARAM_HEARTBEAT_INTERVAL"
# a host whose status is one of these counts as failed on the pages and in the counts
FAILURE_STATUSES = frozenset({"failed", "unreachable", "auth_failed", "timeout"})

Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
# Stripped names must keep a character: the pattern (unanchored, as JSON Schema reads it) asks
# for one that is not white space to Rust's trim nor to JSON Schema's \s, so the published
# schema refuses exactly the blank values the server would.
_VISIBLE = r"[^\s\x85]"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_VISIBLE)]
HostName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=_VISIBLE)]
Status = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}$")]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


def _utc(value: datetime) -> datetime:
    """An aware UTC time: a naive one is read as UTC; one UTC cannot hold becomes the nearest it can."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == datetime.min.year else datetime.max).replace(tzinfo=UTC)


Stamp = Annotated[datetime, AfterValidator(_utc)]


def _one_line(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()) or None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CheckIn(_Body):
    proxy_id: Ident = Field(description="stable per installation (kept on the state volume)")
    hostname: Annotated[str, StringConstraints(max_length=255)] | None = None
    image_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    image_digest: Annotated[str, StringConstraints(max_length=100)] | None = None
    config_version: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    started_at: Stamp | None = None
    uptime_s: Annotated[float, Field(ge=0, le=10**10)] | None = None
    spool_depth: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    last_error: Annotated[str, StringConstraints(max_length=MAX_LINE)] | None = None
    sent_at: Stamp | None = None

    _line = field_validator("last_error")(_one_line)


class CheckInAnswer(BaseModel):
    server_time: datetime
    heartbeat_interval_s: int


class ActionRef(_Body):
    requested: Name
    canonical: Name
    provider: Annotated[str, StringConstraints(max_length=64)] | None = None
    version: Annotated[str, StringConstraints(max_length=32)] | None = None


class Summary(_Body):
    total: Count = 0
    ok: Count = 0
    changed: Count = 0
    failed: Count = 0
    unreachable: Count = 0
    auth_failed: Count = 0
    timeout: Count = 0
    skipped: Count = 0
    blocked: Count = 0
    planned: Count = 0


class HostOutcome(_Body):
    host: HostName
    ip: Annotated[str, StringConstraints(max_length=64)] | None = None
    status: Status
    changed: bool = False
    detail: Annotated[str, StringConstraints(max_length=MAX_HOST_DETAIL)] = ""
    duration_s: Annotated[float, Field(ge=0, le=10**7)] | None = None

    @property
    def is_failure(self) -> bool:
        return self.status in FAILURE_STATUSES


class LocalOutcome(_Body):
    ok: bool
    detail: Annotated[str, StringConstraints(max_length=MAX_LOCAL_DETAIL)] = ""


class RunReportBody(_Body):
    proxy_id: Ident
    run_id: Ident = Field(description="chosen by the proxy; a retried send is stored once")
    action: ActionRef
    trigger: Literal["schedule", "manual"]
    dry_run: bool = False
    started_at: Stamp
    finished_at: Stamp
    summary: Summary
    hosts: Annotated[list[HostOutcome], Field(max_length=MAX_HOSTS)] = Field(default_factory=list)
    local: LocalOutcome | None = None
    error: Annotated[str, StringConstraints(max_length=MAX_LINE)] | None = None

    _line = field_validator("error")(_one_line)


class RunStored(BaseModel):
    run_id: str
    duplicate: bool = False


# --- building a body from the proxy's `run --json` report (core.results.RunReport.to_dict())

_SUMMARY_FROM_STATUS = {
    "ok": "ok", "failed": "failed", "unreachable": "unreachable", "auth_failed": "auth_failed",
    "timeout": "timeout", "skipped_rollout": "skipped", "skipped": "skipped", "blocked_compat": "blocked",
    "blocked": "blocked", "planned": "planned",
}


def _clip(text: object, limit: int) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def run_report_body(
    report: dict[str, Any], *, proxy_id: str, run_id: str, trigger: str, finished_at: datetime,
    error: str | None = None,
) -> dict[str, Any]:
    """The contract's JSON body for one run report (`run --json` shape), bounded as the contract says:
    the summary counts every host; beyond `MAX_HOSTS` the list keeps failed hosts first."""
    hosts_in = report.get("hosts") or []
    counts = dict.fromkeys(Summary.model_fields, 0)
    hosts: list[dict[str, Any]] = []
    for raw in hosts_in:
        status = str(raw.get("status", "failed"))
        changed = bool(raw.get("changed") or (raw.get("data") or {}).get("changed"))
        counts[_SUMMARY_FROM_STATUS.get(status, "failed")] += 1
        counts["changed"] += int(changed)
        hosts.append({
            "host": _clip(raw.get("host"), 255), "ip": _clip(raw.get("ip"), 64) or None, "status": status,
            "changed": changed, "detail": _clip(raw.get("detail"), MAX_HOST_DETAIL),
            "duration_s": raw.get("duration_s"),
        })
    counts["total"] = len(hosts)
    if len(hosts) > MAX_HOSTS:  # a stable sort: failures first, each group in the run's order
        hosts = sorted(hosts, key=lambda h: h["status"] not in FAILURE_STATUSES)[:MAX_HOSTS]
    local = report.get("local")
    action = report.get("action") or {}
    return {
        "proxy_id": proxy_id,
        "run_id": run_id,
        "action": {k: action.get(k) for k in ("requested", "canonical", "provider", "version")},
        "trigger": trigger,
        "dry_run": bool(report.get("dry_run")),
        "started_at": report.get("started_at") or finished_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "summary": counts,
        "hosts": hosts,
        "local": None if local is None else {
            "ok": bool(local.get("ok", not local.get("failed"))),
            "detail": _clip(local.get("detail") or local.get("message") or "", MAX_LOCAL_DETAIL),
        },
        "error": _one_line(_clip(error, MAX_LINE)) if error else None,
    }
