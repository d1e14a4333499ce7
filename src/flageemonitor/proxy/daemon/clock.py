"""Wall clock for the scheduler, with an accelerated variant the tests drive.

Production uses `Clock` (real time). `ScaledClock` runs `scale` times faster than real time,
optionally from a chosen start instant, so a test can see `*/1 * * * *` fire every second at
scale 60 while the code path (cron evaluated in TIMEZONE) stays the production one. It is
selected with `FLAGEEMONITOR_CLOCK_SCALE` / `FLAGEEMONITOR_CLOCK_START` (test hooks).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flageemonitor.core import env


class Clock:
    scale = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, virtual_seconds: float) -> float:
        """Real seconds to wait for `virtual_seconds` to pass on this clock."""
        return virtual_seconds / self.scale


class ScaledClock(Clock):
    def __init__(self, scale: float, start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError("clock scale must be positive")
        self.scale = scale
        self._t0 = time.monotonic()
        self._start = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._t0) * self.scale)


def clock_from_env() -> Clock:
    scale = env.get("CLOCK_SCALE")
    start = env.get("CLOCK_START")
    if not scale and not start:
        return Clock()
    start_dt = datetime.fromisoformat(start) if start else None
    if start_dt is not None and start_dt.tzinfo is None:
        start_dt = start_dt.replace(tzinfo=UTC)
    return ScaledClock(float(scale or 1), start_dt)
