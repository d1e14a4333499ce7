"""Small conversions the payload mappers share. NULL stays null: nothing is invented."""

from __future__ import annotations

from typing import Any


def iso(value: Any) -> str | None:
    """A DATETIME's text (`YYYY-MM-DD HH:MM:SS`) as ISO 8601 (`YYYY-MM-DDTHH:MM:SS`)."""
    if value is None:
        return None
    return str(value).replace(" ", "T", 1)


def as_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(str(value).strip()))
        except ValueError:
            return None


def as_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str:
    return "" if value is None else str(value)
