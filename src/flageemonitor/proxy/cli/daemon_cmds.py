"""`flageemonitor daemon | update-config | status | health`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Registers the daemon and config-lifecycle commands."""
