"""`flageemonitor`: the proxy's command line.

Each group of commands lives in its own module and registers itself here:
`run_cmds` (run, plan, actions, version), `daemon_cmds` (daemon, update-config, status,
health), `zabbix_cmds` (zabbix reporting setup), `host_cmds` (the host update engine).
Conventions shared with `flageemonitor-server` (help, version, metavars, JSON errors) are in
`flageemonitor.cli_style`.
"""

from __future__ import annotations

import os

import typer

from flageemonitor.cli_style import CONTEXT, QuietOpt, VerboseOpt, VersionOpt, plain_metavars, run_app
from flageemonitor.proxy.cli import daemon_cmds, host_cmds, run_cmds, zabbix_cmds

plain_metavars()
app = typer.Typer(
    name="flageemonitor",
    help="FlageeMonitor proxy: run actions on store endpoints, on demand or on a schedule.",
    no_args_is_help=True,
    context_settings=CONTEXT,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    version: VersionOpt = False,
) -> None:
    if verbose or quiet:  # read by the log setup, here and in the daemon it execs
        os.environ["FLAGEEMONITOR_LOG_LEVEL"] = "DEBUG" if verbose else "WARNING"


run_cmds.register(app)
daemon_cmds.register(app)
zabbix_cmds.register(app)
host_cmds.register(app)


def main() -> None:
    run_app(app, "flageemonitor")


if __name__ == "__main__":
    main()
