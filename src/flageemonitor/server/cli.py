"""`flageemonitor-server`: serve the API and administer clients, networks, tokens and configs.

The command forms below are a stable contract (scripts rely on them).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flageemonitor.core.errors import FlageeError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(help="FlageeMonitor control plane server.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
client_app = typer.Typer(help="Clients (customer companies).", no_args_is_help=True)
network_app = typer.Typer(help="Networks (rede) of a client.", no_args_is_help=True)
token_app = typer.Typer(help="Client tokens.", no_args_is_help=True)
config_app = typer.Typer(help="Versioned config_bot.json per network.", no_args_is_help=True)
audit_app = typer.Typer(help="Who changed what.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(client_app, name="client")
app.add_typer(network_app, name="network")
app.add_typer(token_app, name="token")
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")

DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default FLAGEEMONITOR_DATABASE_URL or ./flageemonitor.db"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="machine-readable output")]

_global_url: dict[str, str | None] = {"url": None}


@app.callback()
def _root(database_url: DbUrl = None) -> None:
    _global_url["url"] = database_url


def database_url(option: str | None) -> str:
    from flageemonitor.server.core.config import default_database_url, normalize_database_url

    url = option or _global_url["url"] or os.environ.get("FLAGEEMONITOR_DATABASE_URL") or default_database_url()
    return normalize_database_url(url)


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def session(option: str | None, migrate: bool = True) -> Iterator[Session]:
    """A committed session on a migrated database; errors become one clear line and exit 1."""
    from sqlalchemy.exc import OperationalError

    from flageemonitor.server import migrate as migrations
    from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope

    url = database_url(option)
    engine = make_engine(url)
    try:
        if migrate:
            migrations.upgrade(engine)
        with session_scope(make_sessionmaker(engine)) as s:
            yield s
    except FlageeError as exc:
        raise fail(str(exc)) from None
    except OperationalError as exc:
        raise fail(f"database {engine.url.render_as_string(hide_password=True)} unavailable: {exc.orig}") from None
    finally:
        engine.dispose()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


# --- serve and db


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes; they share state only through the database")] = 1,
    database_url_opt: DbUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the HTTP API (migrates the database first)."""
    url = database_url(database_url_opt)
    _migrate(url)
    run_server(url, host, port, workers, log_level)


def _migrate(url: str) -> None:
    from sqlalchemy.exc import OperationalError

    from flageemonitor.server import migrate as migrations
    from flageemonitor.server.core.db import make_engine

    engine = make_engine(url)
    try:
        migrations.upgrade(engine)
    except OperationalError as exc:
        raise fail(f"cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc.orig}") from None
    finally:
        engine.dispose()


def run_server(url: str, host: str, port: int, workers: int, log_level: str) -> None:
    import shutil
    import tempfile

    import uvicorn

    from flageemonitor.server.core.logging import install_redaction

    os.environ["FLAGEEMONITOR_DATABASE_URL"] = url
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # metrics from every worker are summed through files in this directory
        metrics_dir = tempfile.mkdtemp(prefix="flageemonitor-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    install_redaction()
    try:
        uvicorn.run(
            "flageemonitor.server.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            proxy_headers=False,
            server_header=False,
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@db_app.command("upgrade")
def db_upgrade(database_url_opt: DbUrl = None) -> None:
    """Apply the migrations up to the latest schema."""
    url = database_url(database_url_opt)
    _migrate(url)
    typer.echo("database is at the latest schema")


@db_app.command("current")
def db_current(database_url_opt: DbUrl = None) -> None:
    """Print the schema revision of the database and the latest one shipped."""
    from flageemonitor.server import migrate as migrations
    from flageemonitor.server.core.db import make_engine

    engine = make_engine(database_url(database_url_opt))
    try:
        typer.echo(f"current: {migrations.current_revision(engine)}  head: {migrations.head_revision()}")
    finally:
        engine.dispose()


# --- clients and networks


@client_app.command("add")
def client_add(name: str, database_url_opt: DbUrl = None) -> None:
    """Create a client."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        client = crud.add_client(s, name, actor())
        typer.echo(f"client {client.name!r} created (id {client.id})")


@client_app.command("list")
def client_list(database_url_opt: DbUrl = None, as_json: JsonOut = False) -> None:
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        rows: list[dict[str, Any]] = [
            {"id": c.id, "name": c.name, "networks": [n.code for n in c.networks]} for c in crud.list_clients(s)
        ]
    if as_json:
        _print_json(rows)
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
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        net = crud.add_network(
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
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        rows = [
            {"code": n.code, "client": n.client.name, "provider": n.provider, "timezone": n.timezone,
             "image": n.image, "runtime_name": n.runtime_name, "container_root": n.container_root}
            for n in crud.list_networks(s, client)
        ]
    if as_json:
        _print_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['code']}  client={row['client']}  provider={row['provider'] or '-'}")


# --- tokens


def _expiry(expires_in_days: float | None, expires_at: str | None) -> datetime | None:
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
        typer.Option("--scope", help="config:read, bootstrap:read, reports:write, admin (repeatable)"),
    ] = None,
    expires_in_days: Annotated[float | None, typer.Option("--expires-in-days")] = None,
    expires_at: Annotated[str | None, typer.Option("--expires-at", help="ISO 8601 expiry")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Create a token and print it once; only its hash is kept."""
    from flageemonitor.server import crud

    expiry = _expiry(expires_in_days, expires_at)
    with session(database_url_opt) as s:
        clear, token = crud.issue_token(s, client, actor(), networks=network, scopes=scope, expires_at=expiry)
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
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        crud.revoke_token(s, token_id, actor())
    typer.echo(f"token {token_id} revoked")


@token_app.command("list")
def token_list(
    client: Annotated[str, typer.Option("--client", help="client name")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """List a client's tokens (never the tokens themselves)."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        rows = [crud.token_summary(t) for t in crud.list_tokens(s, client)]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(
            f"{row['id']:>4}  {row['prefix']}…  {state:<7}  networks={','.join(row['networks']) or '*'}  "
            f"scopes={' '.join(row['scopes'])}  expires={row['expires_at'] or '-'}  "
            f"last_used={row['last_used_at'] or '-'}"
        )


# --- configs


def _read_config_file(path: Path) -> Any:
    from flageemonitor.core.errors import ConfigInvalid

    try:
        raw = path.read_bytes() if str(path) != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise fail(str(ConfigInvalid(f"{path}: not valid JSON: {exc}"))) from None


@config_app.command("set")
def config_set(
    file: Annotated[Path, typer.Argument(help="config_bot.json ('-' for stdin)")],
    network: Annotated[str, typer.Option("--network", help="network code")],
    comment: Annotated[str | None, typer.Option(help="why this change")] = None,
    database_url_opt: DbUrl = None,
) -> None:
    """Validate and store a new config version (refused with the failing field if invalid)."""
    from flageemonitor.server import crud

    data = _read_config_file(file)
    with session(database_url_opt) as s:
        row = crud.set_config(s, network, data, actor(), comment)
        typer.echo(f"network {network!r}: config version {row.version} stored")


@config_app.command("show")
def config_show(
    network: Annotated[str, typer.Option("--network")],
    version: Annotated[int | None, typer.Option("--version", help="default: the latest")] = None,
    database_url_opt: DbUrl = None,
) -> None:
    """Print the config exactly as served."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        body = crud.get_config(s, network, version).body
    typer.echo(body, nl=False)


@config_app.command("history")
def config_history(
    network: Annotated[str, typer.Option("--network")],
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """Every version of the network's config, oldest first."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        rows = [
            {"version": r.version, "created_at": r.created_at.isoformat(), "created_by": r.created_by,
             "comment": r.comment, "etag": r.etag}
            for r in crud.config_history(s, network)
        ]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        typer.echo(f"v{row['version']:<4} {row['created_at']}  {row['created_by']}  {row['comment'] or ''}".rstrip())


@config_app.command("diff")
def config_diff(
    network: Annotated[str, typer.Option("--network")],
    from_version: Annotated[int | None, typer.Option("--from", help="default: the version before --to")] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="default: the latest")] = None,
    database_url_opt: DbUrl = None,
) -> None:
    """Unified diff between two versions (keys sorted)."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        text = crud.config_diff(s, network, from_version, to_version)
    typer.echo(text or "(no differences)", nl=not text)


@config_app.command("rollback")
def config_rollback(
    network: Annotated[str, typer.Option("--network")],
    to: Annotated[int, typer.Option("--to", help="version whose content becomes current")],
    database_url_opt: DbUrl = None,
) -> None:
    """Make an earlier version current again (as a new version; history is kept)."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        row = crud.rollback_config(s, network, to, actor())
        typer.echo(f"network {network!r}: version {row.version} now serves the content of version {to}")


# --- audit


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(help="newest entries to show")] = 50,
    target: Annotated[str | None, typer.Option(help="e.g. network:DEMO or token:3")] = None,
    database_url_opt: DbUrl = None,
    as_json: JsonOut = False,
) -> None:
    """The audit log, newest first."""
    from flageemonitor.server import crud

    with session(database_url_opt) as s:
        rows = [
            {"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "target": e.target,
             "detail": e.detail}
            for e in crud.list_audit(s, limit, target)
        ]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['at']}  {row['actor']}  {row['action']}  {row['target']}  {row['detail'] or ''}".rstrip())


# --- demo


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="address to serve on with --serve")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on with --serve")] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve", help="then run the server")] = False,
    database_url_opt: DbUrl = None,
) -> None:
    """Create a demo client, network DEMO, a config and a token; print how to use them."""
    from flageemonitor.server import demo as demo_data

    url = database_url(database_url_opt)
    with session(url) as s:
        token = demo_data.seed(s, actor())
    base = f"http://{host}:{port}"
    typer.echo(demo_data.instructions(base, token))
    if serve_after:
        run_server(url, host, port, 1, "info")


def main() -> None:
    app(prog_name="flageemonitor-server")


if __name__ == "__main__":
    main()
