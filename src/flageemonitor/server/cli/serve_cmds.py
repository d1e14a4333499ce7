"""`flageemonitor-server serve | demo | db upgrade | db current`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from flageemonitor.core.errors import FlageeError
from flageemonitor.server.cli.common import (
    GLOBAL,
    DbUrl,
    actor,
    database_url,
    fail,
    open_engine,
    secret_box,
    session,
)

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")


def serve(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(
        metavar="N", help="worker processes; they share state only through the database")] = 1,
    database_url_opt: DbUrl = None,
    log_level: Annotated[str | None, typer.Option(
        metavar="LEVEL", help="uvicorn log level: debug, info, warning, error (default info; -v/-q)")] = None,
) -> None:
    """Run the HTTP API (migrates the database first)."""
    url = database_url(database_url_opt)
    migrate(url)
    run_server(url, host, port, workers, log_level or GLOBAL["log_level"] or "info")


def migrate(url: str) -> None:
    """Migrate the schema, then seal any config secret still stored in clear."""
    from sqlalchemy.exc import OperationalError

    from flageemonitor.server import migrate as migrations
    from flageemonitor.server.core.db import make_sessionmaker, session_scope
    from flageemonitor.server.services import configs

    engine = open_engine(url)
    try:
        migrations.upgrade(engine)
        with session_scope(make_sessionmaker(engine)) as s:
            sealed = configs.seal_all(s, secret_box(url))
        if sealed:
            typer.echo(f"encrypted the secrets of {sealed} stored config version(s)", err=True)
    except OperationalError as exc:
        raise fail(f"cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc.orig}") from None
    except FlageeError as exc:
        raise fail(f"cannot migrate {engine.url.render_as_string(hide_password=True)}: {exc}") from None
    finally:
        engine.dispose()


def run_server(url: str, host: str, port: int, workers: int, log_level: str) -> None:
    import shutil
    import tempfile

    import uvicorn

    from flageemonitor.server import guard
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
            proxy_headers=False,  # the app believes forwarded headers from FLAGEEMONITOR_TRUSTED_PROXIES only
            server_header=False,
            http=guard.PROTOCOL,  # header size/count limits, header deadline, connections per address
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@db_app.command("upgrade")
def db_upgrade(database_url_opt: DbUrl = None) -> None:
    """Apply the migrations up to the latest schema."""
    migrate(database_url(database_url_opt))
    typer.echo("database is at the latest schema")


@db_app.command("current")
def db_current(database_url_opt: DbUrl = None) -> None:
    """Print the schema revision of the database and the latest one shipped."""
    from flageemonitor.server import migrate as migrations

    engine = open_engine(database_url(database_url_opt), readonly=True)
    try:
        typer.echo(f"current: {migrations.current_revision(engine)}  head: {migrations.head_revision()}")
    finally:
        engine.dispose()


@db_app.command("prune")
def db_prune(database_url_opt: DbUrl = None) -> None:
    """Apply the run-report retention now (the server also does it in the background)."""
    from datetime import UTC, datetime

    from flageemonitor.server.cli.common import settings
    from flageemonitor.server.core.db import make_engine
    from flageemonitor.server.services import retention

    config = settings(database_url_opt)
    migrate(config.database_url)
    engine = make_engine(config.database_url)
    try:
        done = retention.prune(engine, config, datetime.now(UTC))
    finally:
        engine.dispose()
    if done is None:
        typer.echo("another server is pruning right now; nothing done")
        return
    typer.echo(f"removed {done.runs} run reports, {done.proxies} proxies, {done.endpoints} endpoint states, "
               f"{done.sessions} expired sessions (keeping {config.run_retention_days:g} days, "
               f"{config.run_retention_rows} runs per network)")


def demo(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="address to serve on with --serve")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to serve on with --serve")] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve", help="then run the server")] = False,
    database_url_opt: DbUrl = None,
) -> None:
    """Create a demo client, network DEMO, a config and a token; print how to use them."""
    from flageemonitor.server import demo as demo_data

    url = database_url(database_url_opt)
    with session(url) as s:
        token = demo_data.seed(s, actor(), secret_box(url))
    base = f"http://{host}:{port}"
    typer.echo(demo_data.instructions(base, token))
    if serve_after:
        run_server(url, host, port, 1, "info")
