"""The root `flageemonitor-server` app: global options, then each command group registers itself."""

from __future__ import annotations

import typer

from flageemonitor.cli_style import CONTEXT, QuietOpt, VerboseOpt, VersionOpt, plain_metavars, run_app
from flageemonitor.server.cli import (
    admin_cmds,
    audit_cmds,
    client_cmds,
    common,
    config_cmds,
    secrets_cmds,
    serve_cmds,
    signing_cmds,
    token_cmds,
)

plain_metavars()
app = typer.Typer(help="FlageeMonitor control plane server.", no_args_is_help=True, context_settings=CONTEXT,
                  pretty_exceptions_enable=False)


@app.callback()
def _root(
    database_url: common.DbUrl = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    version: VersionOpt = False,
) -> None:
    common.GLOBAL["database_url"] = database_url
    common.GLOBAL["log_level"] = "debug" if verbose else ("warning" if quiet else None)


for module in (serve_cmds, client_cmds, token_cmds, config_cmds, audit_cmds, secrets_cmds, signing_cmds,
               admin_cmds):
    module.register(app)


def main() -> None:
    run_app(app, "flageemonitor-server")
