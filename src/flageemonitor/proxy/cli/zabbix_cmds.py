"""`flageemonitor zabbix check | setup-reporting`.

`check` connects with the configured URL and credentials and prints the API version, the auth
kind (never the secret), the network's host group and how many endpoints it selects.
`setup-reporting` creates, idempotently, the templates, trapper items and `<REDE>-PROXY` host that
`PARAM_ZABBIX_REPORTING` sends to; `--dry-run` lists the changes only.
Exit codes: 0 ok, 3 config or Zabbix error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flageemonitor.cli_style import emit_error
from flageemonitor.core.config_model import BotConfig

EXIT_CONFIG = 3

ConfigFile = Annotated[Path | None, typer.Option("--config", "-c", metavar="FILE",
                                                 help="config_bot.json (default: in the state dir)")]
JsonOut = Annotated[bool, typer.Option("--json", help="machine-readable output")]

zabbix_app = typer.Typer(name="zabbix", help="Zabbix: check the connection, set up result reporting.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Registers the Zabbix commands."""
    app.add_typer(zabbix_app)


def _load(config_file: Path | None) -> BotConfig:
    from flageemonitor.core.errors import ConfigInvalid, ConfigMissing
    from flageemonitor.proxy import settings

    try:
        return settings.load_config(config_file)
    except (ConfigMissing, ConfigInvalid) as exc:
        emit_error(f"config: {exc}", EXIT_CONFIG, prefix="flageemonitor")
        raise typer.Exit(EXIT_CONFIG) from None


@zabbix_app.command("check", help="Connect to the configured Zabbix and show what selection would see.")
def check(config: ConfigFile = None, json_out: JsonOut = False) -> None:
    from flageemonitor.core.errors import InventoryError
    from flageemonitor.core.hosts import HostFilter
    from flageemonitor.proxy.inventory.zabbix import ZabbixInventory, find_group_id, host_group_name
    from flageemonitor.proxy.zabbix.client import connect

    cfg = _load(config)
    try:
        with connect(cfg) as client:
            group = host_group_name(cfg)
            groupid = find_group_id(client, group)
            endpoints = ZabbixInventory(cfg).select_with(client, HostFilter()) if groupid else []
            out = {
                "url": client.settings.url,
                "api_version": str(client.version),
                "auth": client.settings.auth_kind,
                "verify_tls": client.settings.verify_tls,
                "host_group": group,
                "host_group_found": groupid is not None,
                "endpoints": len(endpoints),
            }
    except InventoryError as exc:
        emit_error(f"zabbix: {exc}", EXIT_CONFIG, prefix="flageemonitor")
        raise typer.Exit(EXIT_CONFIG) from None
    if json_out:
        typer.echo(json.dumps(out, indent=2))
    else:
        for key, value in out.items():
            typer.echo(f"{key}: {value}")
    if not out["host_group_found"]:
        typer.echo(f"flageemonitor: zabbix: host group {group!r} not found", err=True)
        raise typer.Exit(EXIT_CONFIG)


@zabbix_app.command("setup-reporting", help="Create the templates, trapper items and <REDE>-PROXY host "
                    "result reporting needs (idempotent).")
def setup_reporting(
    config: ConfigFile = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list the changes, make none")] = False,
    json_out: JsonOut = False,
) -> None:
    from flageemonitor.core.errors import InventoryError
    from flageemonitor.proxy.zabbix.client import connect
    from flageemonitor.proxy.zabbix.setup import ReportingSetup

    cfg = _load(config)
    try:
        with connect(cfg) as client:
            changes = ReportingSetup(client, cfg, dry_run=dry_run).run()
    except InventoryError as exc:
        emit_error(f"zabbix: {exc}", EXIT_CONFIG, prefix="flageemonitor")
        raise typer.Exit(EXIT_CONFIG) from None
    if json_out:
        typer.echo(json.dumps({"dry_run": dry_run, "changes": changes}, indent=2))
    elif changes:
        for change in changes:
            typer.echo(change)
    else:
        typer.echo("reporting already set up: nothing to change")
