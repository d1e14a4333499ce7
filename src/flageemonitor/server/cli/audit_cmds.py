"""`flageemonitor-server audit list`."""

from __future__ import annotations

from typing import Annotated

import typer

from flageemonitor.server.cli.common import DbUrl, JsonOut, print_json, session

audit_app = typer.Typer(help="Who changed what.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(metavar="N", help="newest entries to show")] = 50,
    target: Annotated[str | None, typer.Option(metavar="TARGET", help="e.g. network:DEMO or token:3")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """The audit log, newest first."""
    from flageemonitor.server.services import audit

    with session(database_url_opt, readonly=True) as s:
        rows = [audit.summary(e) for e in audit.entries(s, limit, target)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['at']}  {row['actor']}  {row['action']}  {row['target']}  {row['detail'] or ''}".rstrip())
