"""`flageemonitor zabbix ...`: Zabbix reporting setup."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Registers the Zabbix commands."""
