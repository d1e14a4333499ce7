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
    if expires_at:
        try:
            moment = datetime.fromisoformat(expires_at)
        except ValueError:
            raise fail(f"--expires-at {expires_at!r}: use ISO 8601, e.g. 2027-01-31T00:00:00+00:00") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if expires_in_days is not None:
        return datetime.now(UTC) + timedelta(days=expires_in_days)
    return None


@token_app.command("issue")
def token_issue(
    client: Annotated[str, typer.Option("--client", help="owning client name")],
    network: Annotated[list[str] | None, typer.Option("--network", help="limit to this network (repeatable)")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="config:read, bootstrap:read, report:write, admin (repeatable)"),
    ] = None,
    expires_in_days: Annotated[float | None, typer.Option("--expires-in-days")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601 expiry")] = None,
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
    if as_json:
        typer.echo(json.dumps({"token": clear, "id": token_id}))
    else:
        typer.echo(f"token id {token_id} (scopes: {' '.join(scopes)}); shown only now, store it safely:")
        typer.echo(clear)


@token_app.command("revoke")
def token_revoke(token_id: int, database_url_opt: DbUrl = None) -> None:
    """Revoke a token: requests with it get 403 from now on."""
    from flageemonitor.server.services import tokens

    with session(database_url_opt) as s:
        tokens.revoke(s, token_id, actor())
    typer.echo(f"token {token_id} revoked")


@token_app.command("list")
def token_list(
    client: Annotated[str, typer.Option("--client", help="client name")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """List a client's tokens (never the tokens themselves)."""
    from flageemonitor.server.services import tokens

    with session(database_url_opt) as s:
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
