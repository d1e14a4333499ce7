"""Dates the collectors accept (`--dtini`, `--dtfim`) and the positions their cursors keep.

A date is `YYYY-MM-DD`, `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (a `T` may separate date and
time); anything else is refused with one line naming the flag. Dates reach SQL only as bound
parameters. Positions are the text form MySQL gives a DATETIME (`YYYY-MM-DD HH:MM:SS[.ffffff]`),
which sorts as time does.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flageemonitor.core.errors import FlageeError

POSITION_FORMAT = "%Y-%m-%d %H:%M:%S"
_ACCEPTED = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


class BadDate(FlageeError):
    """A `--dtini`/`--dtfim` value that is not a date."""


def parse_date(value: str, flag: str = "--dtini") -> datetime:
    text = value.strip().replace("T", " ", 1) if isinstance(value, str) else ""
    for fmt in _ACCEPTED:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    shown = value if len(value) <= 60 else value[:57] + "..."
    raise BadDate(f"{flag} {shown!r} is not a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'")


def parse_range(dtini: str | None, dtfim: str | None) -> tuple[datetime, datetime | None] | None:
    """(start, end) for a re-send, None when neither is given. `--dtfim` needs `--dtini`, and a
    date-only `--dtfim` includes that whole day."""
    if not dtini and not dtfim:
        return None
    if not dtini:
        raise BadDate("--dtfim needs --dtini (the range to re-send starts at --dtini)")
    start = parse_date(dtini, "--dtini")
    end = None
    if dtfim:
        end = parse_date(dtfim, "--dtfim")
        if len(dtfim.strip()) == 10:
            end += timedelta(days=1) - timedelta(seconds=1)
        if end < start:
            raise BadDate(f"--dtfim {dtfim!r} is before --dtini {dtini!r}")
    return start, end


def shift(position: str, seconds: float) -> str:
    """`position` moved by `seconds` (negative: earlier), in position text form."""
    try:
        base = datetime.strptime(position[:19], POSITION_FORMAT)
    except ValueError:  # MySQL's zero date and other non-dates: nothing to shift
        return position
    return (base + timedelta(seconds=seconds)).strftime(POSITION_FORMAT)
