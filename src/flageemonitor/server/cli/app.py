"""The root `flageemonitor-server` app: global options, then each command group registers itself."""

from __future__ import annotations

import typer

from flageemonitor.server.cli import (
    admin_cmds,
    audit_cmds,
    client_cmds,
    common,
    config_cmds,
    secrets_cmds,
    serve_cmds,
    token_cmds,
)

app = typer.Typer(help="FlageeMonitor control plane server.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)


@app.callback()
def _root(database_url: common.DbUrl = None) -> None:
    common.GLOBAL["database_url"] = database_url


for module in (serve_cmds, client_cmds, token_cmds, config_cmds, audit_cmds, secrets_cmds, admin_cmds):
    module.register(app)


def main() -> None:
    app(prog_name="flageemonitor-server")
