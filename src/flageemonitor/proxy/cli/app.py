"""`flageemonitor`: the proxy's command line.

Each group of commands lives in its own module and registers itself here:
`run_cmds` (run, plan, actions, version), `daemon_cmds` (daemon, update-config, status,
health), `zabbix_cmds` (zabbix reporting setup), `host_cmds` (the host update engine).
"""

from __future__ import annotations

import typer

from flageemonitor.proxy.cli import daemon_cmds, host_cmds, run_cmds, zabbix_cmds

app = typer.Typer(
    name="flageemonitor",
    help="FlageeMonitor proxy: run actions on store endpoints, on demand or on a schedule.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

run_cmds.register(app)
daemon_cmds.register(app)
zabbix_cmds.register(app)
host_cmds.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
