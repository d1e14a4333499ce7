"""The instant an action acts at, in the config's time zone.

Time-dependent decisions (the shutdown window, the names of dated backups) read the wall clock
in the config's `TIMEZONE` (else the container's `TZ`, else UTC: the schedule's own rule),
whatever the container's `TZ`. `--at` (action argument `at`, ISO 8601) replaces "now": with an
offset it is that instant; without one, that wall-clock time in the config's time zone. The
daemon passes its own clock's time the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flageemonitor.core.errors import ActionRefused
from flageemonitor.proxy.actions.base import ActionContext
from flageemonitor.proxy.daemon.schedule import schedule_timezone


def parse_at(text: str, ctx: ActionContext) -> datetime:
    """`--at` as an aware datetime in the config's time zone; raises ActionRefused."""
    tz, _ = schedule_timezone(ctx.config)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ActionRefused(f"--at {text!r}: expected an ISO 8601 time like 2026-03-10T23:30 "
                            "(wall-clock time in the config's TIMEZONE) or 2026-03-11T02:30+00:00") from None
    return when.replace(tzinfo=tz) if when.tzinfo is None else when.astimezone(tz)


def action_time(ctx: ActionContext) -> tuple[datetime, str]:
    """(now or `--at`, in the config's time zone; that zone's name)."""
    tz, name = schedule_timezone(ctx.config)
    at = ctx.args.get("at")
    if at:
        return parse_at(str(at), ctx), name
    return datetime.now(UTC).astimezone(tz), name
