"""`flageemonitor-server token issue|revoke|list`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from flageemonitor.server.cli.common import DbUrl, JsonOut, actor, fail, print_json, session

token_app = typer.Typer(help="Client tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def expiry(expires_in_days: float | None, expires_at: str | None) -> datetime | None:
    """The expiry asked for; a moment that is not in the future is refused (it would issue a dead token)."""
    now = datetime.now(UTC)
    if expires_at:
        try:
            moment = datetime.fromisoformat(expires_at)
        except ValueError:
            raise fail(f"--expires-at {expires_at!r}: use ISO 8601, e.g. 2027-01-31T00:00:00+00:00") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if moment <= now:
            raise fail(f"--expires-at {expires_at!r} is in the past: give a future moment")
        return moment
    if expires_in_days is not None:
        if not expires_in_days > 0:
            raise fail(f"--expires-in-days {expires_in_days:g}: must be more than 0")
        try:
            return now + timedelta(days=expires_in_days)
        except OverflowError:
            raise fail(f"--expires-in-days {expires_in_days:g}: too far in the future") from None
    return None


@token_app.command("issue")
def token_issue(
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="owning client name")],
    network: Annotated[list[str] | None, typer.Option(
        "--network", "--rede", metavar="CODE",
        help="limit to this network (repeatable); without it the token covers every network of the client")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", metavar="SCOPE", help="config:read, bootstrap:read, report:write, admin (repeatable)"),
    ] = None,
    expires_in_days: Annotated[float | None, typer.Option(
        "--expires-in-days", metavar="DAYS", help="expires this many days from now (> 0)")] = None,
    expires_at: Annotated[str | None, typer.Option(
        "--expires-at", metavar="WHEN", help="ISO 8601 expiry in the future, e.g. 2027-01-31T00:00:00+00:00")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create a token and print it once; only its hash is kept."""
    from flageemonitor.server.services import tokens

    expiry_at = expiry(expires_in_days, expires_at)
    with session(database_url_opt) as s:
        clear, token = tokens.issue(s, client, actor(), networks=network, scopes=scope, expires_at=expiry_at)
        token_id = token.id
        scopes = token.scope_list
        covered = [n.code for n in token.networks] or [n.code for n in token.client.networks]
    if as_json:
        typer.echo(json.dumps({"token": clear, "id": token_id}))
    else:
        if not network:
            typer.echo(f"no --network given: this token covers every network of client {client!r}, now and later "
                       f"(now: {', '.join(covered) or 'none yet'})", err=True)
        typer.echo(f"token id {token_id} (scopes: {' '.join(scopes)}); shown only now, store it safely:")
        typer.echo(clear)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="token id (see: token list)")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Revoke a token: requests with it get 403 from now on."""
    from flageemonitor.server.services import tokens

    with session(database_url_opt) as s:
        tokens.revoke(s, token_id, actor())
    if as_json:
        print_json({"id": token_id, "revoked": True})
    else:
        typer.echo(f"token {token_id} revoked")


@token_app.command("list")
def token_list(
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="client name")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """List a client's tokens (never the tokens themselves)."""
    from flageemonitor.server.services import tokens

    with session(database_url_opt, readonly=True) as s:
        rows = [tokens.summary(t) for t in tokens.of_client(s, client)]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(
            f"{row['id']:>4}  {row['prefix']}…  {state:<7}  networks={','.join(row['networks']) or '*'}  "
            f"scopes={' '.join(row['scopes'])}  expires={row['expires_at'] or '-'}  "
            f"last_used={row['last_used_at'] or '-'}"
        )
