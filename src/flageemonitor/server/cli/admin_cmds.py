"""`flageemonitor-server admin create|list|password|remove` (people who sign in to the pages)
and `admin token issue|list|revoke` (tokens for the JSON admin API)."""

from __future__ import annotations

import getpass
import json
import sys
from typing import Annotated

import typer

from flageemonitor.server.cli.common import DbUrl, JsonOut, actor, fail, print_json, session
from flageemonitor.server.cli.token_cmds import expiry

admin_app = typer.Typer(help="People who sign in to the fleet pages, and admin API tokens.", no_args_is_help=True)
admin_token_app = typer.Typer(help="Tokens for the JSON admin API (/api/admin/).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
    admin_app.add_typer(admin_token_app, name="token")


def read_password() -> str:
    """The password from stdin: typed twice on a terminal, else the first line of the input."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise fail("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise fail("no password on stdin (e.g. printf '%s\\n' \"$PASSWORD\" | flageemonitor-server admin create NAME)")
    return line.rstrip("\r\n")


@admin_app.command("create")
def admin_create(name: str, database_url_opt: DbUrl = None) -> None:
    """Create a person who can sign in at /login; the password is read from stdin."""
    from flageemonitor.server.services import people

    password = read_password()
    with session(database_url_opt) as s:
        people.create(s, name, password, actor())
    typer.echo(f"person {name!r} created; sign in at /login")


@admin_app.command("password")
def admin_password(name: str, database_url_opt: DbUrl = None) -> None:
    """Set a new password (stdin); unlocks the account and signs it out everywhere."""
    from flageemonitor.server.services import people

    password = read_password()
    with session(database_url_opt) as s:
        people.set_password(s, name, password, actor())
    typer.echo(f"password of {name!r} changed; their sessions are closed")


@admin_app.command("remove")
def admin_remove(name: str, database_url_opt: DbUrl = None) -> None:
    """Remove a person and close their sessions."""
    from flageemonitor.server.services import people

    with session(database_url_opt) as s:
        people.remove(s, name, actor())
    typer.echo(f"person {name!r} removed")


@admin_app.command("list")
def admin_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    """People who can sign in (never their passwords)."""
    from flageemonitor.server.services import people

    with session(database_url_opt) as s:
        rows = [people.summary(p) for p in people.all_people(s)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        locked = f"  locked until {row['locked_until']}" if row["locked_until"] else ""
        typer.echo(f"{row['username']}  last sign-in: {row['last_login_at'] or 'never'}{locked}")


@admin_token_app.command("issue")
def admin_token_issue(
    name: Annotated[str, typer.Option("--name", help="who or what uses it (e.g. ci, backoffice)")],
    expires_in_days: Annotated[float | None, typer.Option("--expires-in-days")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601 expiry")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create an admin API token and print it once; only its hash is kept."""
    from flageemonitor.server.services import admin_tokens

    when = expiry(expires_in_days, expires_at)
    with session(database_url_opt) as s:
        clear, row = admin_tokens.issue(s, name, actor(), when)
        token_id = row.id
    if as_json:
        typer.echo(json.dumps({"token": clear, "id": token_id}))
    else:
        typer.echo(f"admin token id {token_id} ({name}); shown only now, store it safely:")
        typer.echo(clear)


@admin_token_app.command("list")
def admin_token_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    from flageemonitor.server.services import admin_tokens

    with session(database_url_opt) as s:
        rows = [admin_tokens.summary(t) for t in admin_tokens.all_tokens(s)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(f"{row['id']:>4}  {row['prefix']}…  {state:<7}  {row['name']}  expires={row['expires_at'] or '-'}"
                   f"  last_used={row['last_used_at'] or '-'}")


@admin_token_app.command("revoke")
def admin_token_revoke(token_id: int, database_url_opt: DbUrl = None) -> None:
    """Revoke an admin API token: calls with it get 403 from now on."""
    from flageemonitor.server.services import admin_tokens

    with session(database_url_opt) as s:
        admin_tokens.revoke(s, token_id, actor())
    typer.echo(f"admin token {token_id} revoked")
