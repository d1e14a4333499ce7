"""The bodies the proxy sends, bounded and redacted before they are spooled.

- A run report is `core.fleet_contract.run_report_body` of the RunReport (`run --json` shape),
  after every free-text field (host details, the local action's detail, the run's error) went
  through the one redactor (`core.redact`): no password, token or registered secret leaves the
  proxy. At most `MAX_HOSTS` hosts, details clipped to the contract's bounds.
- A check-in is the daemon's state (contract v1).
- On the wire: compact UTF-8 JSON, gzip-compressed beyond `GZIP_ABOVE` bytes (the server takes
  `Content-Encoding: gzip`; the sender recognises a compressed body by its magic bytes). A report
  still over the contract's 1 MiB once compressed has its host details shortened, then its host
  list, until it fits (logged): the counts stay whole.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime
from typing import Any

from flageemonitor.core.fleet_contract import (
    MAX_BODY_BYTES,
    MAX_DECODED_BYTES,
    MAX_LINE,
    MAX_LOCAL_DETAIL,
    run_report_body,
)
from flageemonitor.core.redact import redact
from flageemonitor.core.results import RunReport

log = logging.getLogger("flageemonitor.controlplane")

GZIP_ABOVE = 16 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_DETAIL_STEPS = (200, 60, 0)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _redacted(report: dict[str, Any]) -> dict[str, Any]:
    out = dict(report)
    out["hosts"] = [{**h, "detail": redact(str(h.get("detail") or ""))} for h in report.get("hosts") or []]
    local = report.get("local")
    if isinstance(local, dict):
        # only ok and detail travel; the local action's other evidence stays on the proxy
        detail = str(local.get("detail") or local.get("message") or "")[: MAX_LOCAL_DETAIL * 2]
        out["local"] = {"ok": local.get("ok", not local.get("failed")), "detail": redact(detail)}
    return out


def run_body(report: RunReport | dict[str, Any], *, proxy_id: str, run_id: str, trigger: str,
             error: str | None = None) -> dict[str, Any]:
    """The run report body; `report` is a RunReport or a minimal `run --json` shaped dict (a run
    that failed before any host: action, dry_run, started_at). A staged run that its stop rule
    ended carries the rule's reason as its `error`, unless an error is given."""
    data = report.to_dict() if isinstance(report, RunReport) else report
    staging = data.get("staging") or {}
    if error is None and staging.get("stopped_after_batch") is not None:
        error = str(staging.get("stop_reason") or f"the run stopped after batch {staging['stopped_after_batch']}")
    return run_report_body(_redacted(data), proxy_id=proxy_id, run_id=run_id, trigger=trigger,
                           finished_at=datetime.now(UTC), error=redact(error) if error else None)


def failed_run(requested: str, canonical: str, *, provider: str | None, started_at: str,
               dry_run: bool = False) -> dict[str, Any]:
    """The `run --json` shape of a run that ended before any host was contacted."""
    return {"action": {"requested": requested, "canonical": canonical, "provider": provider, "version": None},
            "dry_run": dry_run, "started_at": started_at, "hosts": []}


def encode(body: dict[str, Any]) -> bytes:
    """The wire bytes of `body` within the contract's bounds (see the module docstring)."""
    wire = _encode(body)
    if _fits(wire):
        return wire
    hosts = body.get("hosts") or []
    for limit in _DETAIL_STEPS:
        shorter = {**body, "hosts": [{**h, "detail": _clip(h.get("detail", ""), limit)} for h in hosts]}
        wire = _encode(shorter)
        if _fits(wire):
            log.warning("run %s: report over %d bytes; host details shortened to %d characters",
                        body.get("run_id"), MAX_BODY_BYTES, limit)
            return wire
    kept = shorter["hosts"]
    while kept and not _fits(wire):
        kept = kept[: len(kept) // 2]
        wire = _encode({**shorter, "hosts": kept})
    log.warning("run %s: report over %d bytes; sending %d of %d hosts (counts complete)",
                body.get("run_id"), MAX_BODY_BYTES, len(kept), len(hosts))
    return wire


def decode(wire: bytes) -> dict[str, Any]:
    """The JSON body of spooled wire bytes (for tests and `status`)."""
    raw = gzip.decompress(wire) if wire.startswith(GZIP_MAGIC) else wire
    doc: dict[str, Any] = json.loads(raw)
    return doc


def _encode(body: dict[str, Any]) -> bytes:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    if len(raw) > MAX_DECODED_BYTES:
        return raw  # over the server's decompressed bound: `_fits` refuses it uncompressed
    return gzip.compress(raw, compresslevel=6) if len(raw) > GZIP_ABOVE else raw


def _fits(wire: bytes) -> bool:
    return len(wire) <= MAX_BODY_BYTES


def _clip(text: object, limit: int) -> str:
    value = str(text or "")
    if len(value) <= limit:
        return value
    return value[: limit - 1] + "…" if limit > 0 else ""


def checkin_body(*, proxy_id: str, hostname: str, image_version: str, image_digest: str | None,
                 config_version: int | None, started_at: str, uptime_s: float, spool_depth: int,
                 last_error: str | None) -> dict[str, Any]:
    """A check-in (contract v1); `last_error` is redacted and made one line here."""
    error = " ".join(redact(last_error).split())[:MAX_LINE] if last_error else None
    return {"proxy_id": proxy_id, "hostname": hostname, "image_version": image_version,
            "image_digest": image_digest, "config_version": config_version, "started_at": started_at,
            "uptime_s": round(uptime_s, 1), "spool_depth": spool_depth, "last_error": error or None,
            "sent_at": now_iso()}
