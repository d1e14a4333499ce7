"""Whether an endpoint may be powered off now (pure).

- Never a store server: an IP in `PARAM_IP_CONCENTRADORES` or `CONCENTRADORES[].ip`, or an
  endpoint of type CONCENTRADOR (its name or its inventory tag).
- Never an IP in `shutdown_exception_ips`.
- Only inside `shutdown_window`: from `start` o'clock to the end of the `end` hour, across
  midnight (22 and 6: 22:00 to 06:59, the original's inclusive end), read as wall-clock time in
  the config's time zone. A window with start <= end is refused by config validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.hosts import Host, is_concentrator


@dataclass(frozen=True)
class ShutdownDecision:
    go: bool
    reason: str
    rule: str  # window | outside_window | exception | concentrator


def in_window(hour: int, start: int, end: int) -> bool:
    """`hour` (0-23) is inside a window that crosses midnight (start > end), end hour included."""
    return start > end and (hour >= start or hour <= end)


def window_text(start: int, end: int) -> str:
    return f"{start:02d}:00-{end:02d}:59"


def decide(host: Host, config: BotConfig, now_local: datetime, tz_name: str) -> ShutdownDecision:
    """The decision for `host` at `now_local` (already in the config's time zone)."""
    if is_concentrator(host, config.concentrator_ips):
        return ShutdownDecision(False, "concentrator (store server): never shut down", "concentrator")
    if host.ip.strip() in {ip.strip() for ip in config.shutdown_exception_ips}:
        return ShutdownDecision(False, f"{host.ip} is in shutdown_exception_ips", "exception")
    window = config.shutdown_window
    when = f"{now_local:%H:%M} {tz_name}"
    span = window_text(window.start, window.end)
    if not in_window(now_local.hour, window.start, window.end):
        return ShutdownDecision(False, f"outside the shutdown window {span} (now {when})", "outside_window")
    return ShutdownDecision(True, f"inside the shutdown window {span} (now {when})", "window")
