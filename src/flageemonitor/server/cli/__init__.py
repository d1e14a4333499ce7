"""`flageemonitor-server`: serve the API and administer clients, networks, tokens and configs.

Each group of commands lives in its own module and registers itself on the root app (`app`):
`serve_cmds` (serve, demo, db), `client_cmds` (client, network), `token_cmds`, `config_cmds`,
`audit_cmds`, `admin_cmds` (people and admin API tokens). Commands parse options and print; the
work is done by `server.services`.
The command forms are a stable contract (scripts rely on them).
"""

from flageemonitor.server.cli.app import app, main

__all__ = ["app", "main"]
