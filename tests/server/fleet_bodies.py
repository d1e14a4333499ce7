"""Contract bodies for tests: a check-in and a run report with chosen hosts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any


def checkin(proxy_id: str | None = None, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "proxy_id": proxy_id or str(uuid.uuid4()), "hostname": "flageemonitor", "image_version": "0.1.0",
        "image_digest": "sha256:" + "a" * 64, "config_version": 1, "started_at": (now - timedelta(hours=1)).isoformat(),
        "uptime_s": 3600.0, "spool_depth": 0, "last_error": None, "sent_at": now.isoformat(),
    }
    body.update(fields)
    return body


def host(name: str, status: str = "ok", detail: str = "", changed: bool = False) -> dict[str, Any]:
    return {"host": name, "ip": "10.0.0.1", "status": status, "changed": changed, "detail": detail, "duration_s": 0.5}


def run_report(proxy_id: str, hosts: list[dict[str, Any]], *, action: str = "diagnose_env",
               trigger: str = "schedule", dry_run: bool = False, finished_at: datetime | None = None,
               run_id: str | None = None, **fields: Any) -> dict[str, Any]:
    finished = finished_at or datetime.now(UTC)
    counts = {k: 0 for k in ("ok", "changed", "failed", "unreachable", "auth_failed", "timeout", "skipped",
                             "blocked", "planned")}
    for h in hosts:
        key = {"skipped_rollout": "skipped", "blocked_compat": "blocked"}.get(h["status"], h["status"])
        counts[key] = counts.get(key, 0) + 1
        counts["changed"] += int(h.get("changed", False))
    body: dict[str, Any] = {
        "proxy_id": proxy_id, "run_id": run_id or str(uuid.uuid4()),
        "action": {"requested": action, "canonical": action, "provider": "arius", "version": "1.0.0"},
        "trigger": trigger, "dry_run": dry_run, "started_at": (finished - timedelta(seconds=5)).isoformat(),
        "finished_at": finished.isoformat(), "summary": {"total": len(hosts), **counts}, "hosts": hosts,
        "local": None, "error": None,
    }
    body.update(fields)
    return body
