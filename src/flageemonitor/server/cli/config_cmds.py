"""`flageemonitor-server config set|show|history|diff|rollback`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flageemonitor.server.cli.common import (
    DbUrl,
    JsonOut,
    Network,
    actor,
    fail,
    print_json,
    secret_box,
    session,
)

config_app = typer.Typer(help="Versioned config_bot.json per network.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


def _read_config_file(path: Path) -> Any:
    from flageemonitor.core.errors import ConfigInvalid

    try:
        raw = path.read_bytes() if str(path) != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(str(ConfigInvalid(f"{path}: not valid JSON: {exc}"))) from None


@config_app.command("set")
def config_set(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="config_bot.json ('-' for stdin)")],
    network: Network,
    comment: Annotated[str | None, typer.Option(metavar="TEXT", help="why this change (kept in the history)")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Validate and store a new config version (refused with the failing field if invalid)."""
    from flageemonitor.server.services import configs

    data = _read_config_file(file)
    box = secret_box(database_url_opt)
    with session(database_url_opt) as s:
        row = configs.store(s, network, data, actor(), comment, box=box)
        version = row.version
    warnings = configs.warnings_for(data)
    if as_json:
        print_json({"network": network, "version": version, "warnings": warnings})
        return
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"network {network!r}: config version {version} stored")


ShowSecrets = Annotated[bool, typer.Option("--show-secrets", help="print secret values (passwords, tokens) in clear")]


@config_app.command("show")
def config_show(
    network: Network,
    version: Annotated[int | None, typer.Option("--version", metavar="N", help="default: the latest")] = None,
    show_secrets: ShowSecrets = False,
    database_url_opt: DbUrl = None,
) -> None:
    """Print the config as served, secret values as *** unless --show-secrets."""
    from flageemonitor.server.services import configs

    box = secret_box(database_url_opt)
    with session(database_url_opt, readonly=True) as s:
        body = configs.shown_body(configs.get(s, network, version), box, secrets=show_secrets)
    typer.echo(body, nl=False)


@config_app.command("history")
def config_history(
    network: Network,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Every version of the network's config, oldest first."""
    from flageemonitor.server.services import configs

    with session(database_url_opt, readonly=True) as s:
        rows = [configs.version_summary(r) for r in configs.history(s, network)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"v{row['version']:<4} {row['created_at']}  {row['created_by']}  {row['comment'] or ''}".rstrip())


@config_app.command("diff")
def config_diff(
    network: Network,
    from_version: Annotated[int | None, typer.Option(
        "--from", metavar="N", help="default: the version before --to")] = None,
    to_version: Annotated[int | None, typer.Option("--to", metavar="N", help="default: the latest")] = None,
    show_secrets: ShowSecrets = False,
    database_url_opt: DbUrl = None,
) -> None:
    """Unified diff between two versions (keys sorted; secrets as *** unless --show-secrets)."""
    from flageemonitor.server.services import configs

    box = secret_box(database_url_opt)
    with session(database_url_opt, readonly=True) as s:
        text = configs.diff(s, network, from_version, to_version, box=box, secrets=show_secrets)
    typer.echo(text or "(no differences)", nl=not text)


@config_app.command("rollback")
def config_rollback(
    network: Network,
    to: Annotated[int, typer.Option("--to", metavar="N", help="version whose content becomes current")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Make an earlier version current again (as a new version; history is kept)."""
    from flageemonitor.server.services import configs

    box = secret_box(database_url_opt)
    with session(database_url_opt) as s:
        row = configs.rollback(s, network, to, actor(), box=box)
        version = row.version
    if as_json:
        print_json({"network": network, "version": version, "content_of": to})
    else:
        typer.echo(f"network {network!r}: version {version} now serves the content of version {to}")
