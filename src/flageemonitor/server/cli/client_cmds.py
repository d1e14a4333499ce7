"""`flageemonitor-server client add|list` and `network add|list|channel`."""

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
def client_add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="client (company) name")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create a client."""
    from flageemonitor.server.services import clients

    with session(database_url_opt) as s:
        client = clients.add(s, name, actor())
        result = {"id": client.id, "name": client.name}
    if as_json:
        print_json(result)
    else:
        typer.echo(f"client {result['name']!r} created (id {result['id']})")


@client_app.command("list")
def client_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    """List clients and their networks."""
    from flageemonitor.server.services import clients

    with session(database_url_opt, readonly=True) as s:
        rows: list[dict[str, Any]] = [clients.summary(c) for c in clients.all_clients(s)]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['id']:>4}  {row['name']}  networks: {', '.join(row['networks']) or '-'}")


@network_app.command("add")
def network_add(
    code: Annotated[str, typer.Argument(metavar="CODE", help="network code (rede), unique whatever its case")],
    client: Annotated[str, typer.Option("--client", metavar="NAME", help="owning client name")],
    provider: Annotated[str | None, typer.Option(metavar="NAME", help="execution provider (arius, zanthus...)")] = None,
    timezone: Annotated[str | None, typer.Option(
        metavar="ZONE", help="IANA time zone: installer default, and TIMEZONE of configs without one")] = None,
    image: Annotated[str | None, typer.Option(metavar="IMAGE", help="proxy image for the installer default")] = None,
    runtime_name: Annotated[str | None, typer.Option(
        metavar="NAME", help="container name for the installer default")] = None,
    container_root: Annotated[str | None, typer.Option(
        metavar="PATH", help="container root for the installer default")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create a network (rede) for a client."""
    from flageemonitor.server.services import networks

    with session(database_url_opt) as s:
        net = networks.add(
            s, client, code, actor(), provider=provider, timezone=timezone, image=image,
            runtime_name=runtime_name, container_root=container_root,
        )
        result = {"code": net.code, "client": client, "provider": net.provider, "timezone": net.timezone}
    if as_json:
        print_json(result)
    else:
        typer.echo(f"network {result['code']!r} created for client {client!r}")


@network_app.command("list")
def network_list(
    client: Annotated[str | None, typer.Option("--client", metavar="NAME", help="only this client's")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """List networks."""
    from flageemonitor.server.services import networks

    with session(database_url_opt, readonly=True) as s:
        rows = [networks.summary(n) for n in networks.all_networks(s, client)]
    if as_json:
        print_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['code']}  client={row['client']}  provider={row['provider'] or '-'}  "
                       f"channel={row['image_channel']}")


@network_app.command("channel")
def network_channel(
    code: Annotated[str, typer.Argument(metavar="CODE", help="network code (rede)")],
    channel: Annotated[str | None, typer.Argument(
        metavar="CHANNEL", help="stable, canary, or a version tag (1.4.2) or digest (sha256:...) to pin; "
        "without it, show the current channel")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Show or set the image channel a network's proxies run (served in their config)."""
    from flageemonitor.server.services import networks

    with session(database_url_opt, readonly=channel is None) as s:
        if channel is None:
            before = after = networks.channel(networks.get(s, code))
        else:
            before, after = networks.set_channel(s, code, channel, actor())
    result = {"network": code, "channel": after.channel, "tag": after.tag, "previous": before.describe(),
              "changed": before != after}
    if as_json:
        print_json(result)
    elif channel is None:
        typer.echo(f"network {code!r}: {after.describe()} (runs tag {after.tag})")
    elif before == after:
        typer.echo(f"network {code!r} already on {after.describe()}")
    else:
        typer.echo(f"network {code!r}: {before.describe()} -> {after.describe()}; its proxies run tag {after.tag} "
                   "after their next config refresh")
