"""The root `flageemonitor-server` app: global options, then each command group registers itself."""

from __future__ import annotations

from typing import Annotated

import typer

from flageemonitor import __version__
from flageemonitor.cli_style import CONTEXT, plain_metavars, run_app
from flageemonitor.server.cli import (
    audit_cmds,
    client_cmds,
    common,
    config_cmds,
    secrets_cmds,
    serve_cmds,
    token_cmds,
)

plain_metavars()
app = typer.Typer(help="FlageeMonitor control plane server.", no_args_is_help=True, context_settings=CONTEXT,
                  pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    database_url: common.DbUrl = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="more log output (debug)")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="warnings and errors only")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print the version and exit")] = False,
) -> None:
    common.GLOBAL["database_url"] = database_url
    common.GLOBAL["log_level"] = "debug" if verbose else ("warning" if quiet else None)


for module in (serve_cmds, client_cmds, token_cmds, config_cmds, audit_cmds, secrets_cmds):
    module.register(app)


def main() -> None:
    run_app(app, "flageemonitor-server")
