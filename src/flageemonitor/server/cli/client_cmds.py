"""`flageemonitor-server client add|list` and `network add|list`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flageemonitor.server.cli.common import DbUrl, JsonOut, actor, print_json, session

client_app = typer.Typer(help="Clients (customer companies).", no_args_is_help=True)
network_app = typer.Typer(help="Networks (rede) of a client.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(client_app, name="client")
    app.add_typer(network_app, name="network")


@client_app.command("add")
def client_add(name: str, database_url_opt: DbUrl = None) -> None:
    """Create a client."""
    from flageemonitor.server.services import clients

    with session(database_url_opt) as s:
        client = clients.add(s, name, actor())
        typer.echo(f"client {client.name!r} created (id {client.id})")


@client_app.command("list")
def client_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    from flageemonitor.server.services import clients

    with session(database_url_opt) as s:
        rows: list[dict[str, Any]] = [clients.summary(c) for c in clients.all_clients(s)]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['id']:>4}  {row['name']}  networks: {', '.join(row['networks']) or '-'}")


@network_app.command("add")
def network_add(
    code: str,
    client: Annotated[str, typer.Option("--client", help="owning client name")],
    provider: Annotated[str | None, typer.Option(help="execution provider (arius, zanthus...)")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone for the installer default")] = None,
    image: Annotated[str | None, typer.Option(help="proxy image for the installer default")] = None,
    runtime_name: Annotated[str | None, typer.Option(help="container name for the installer default")] = None,
    container_root: Annotated[str | None, typer.Option(help="container root for the installer default")] = None,
    database_url_opt: DbUrl = None,
) -> None:
    """Create a network (rede) for a client."""
    from flageemonitor.server.services import networks

    with session(database_url_opt) as s:
        net = networks.add(
            s, client, code, actor(), provider=provider, timezone=timezone, image=image,
            runtime_name=runtime_name, container_root=container_root,
        )
        typer.echo(f"network {net.code!r} created for client {client!r}")


@network_app.command("list")
def network_list(
    client: Annotated[str | None, typer.Option("--client")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    from flageemonitor.server.services import networks

    with session(database_url_opt) as s:
        rows = [networks.summary(n) for n in networks.all_networks(s, client)]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['code']}  client={row['client']}  provider={row['provider'] or '-'}")
