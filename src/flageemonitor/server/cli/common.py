"""What every server command shares: the database option, the session, errors, output."""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flageemonitor.core.errors import FlageeError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from flageemonitor.server.core.config import Settings
    from flageemonitor.server.core.secretbox import SecretBox

DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", metavar="URL",
                 help="database: a SQLite file path or a URL (sqlite:////abs.db, postgresql://user@host/db); "
                 "default FLAGEEMONITOR_DATABASE_URL or ./flageemonitor.db"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="machine-readable output (errors too)")]
Network = Annotated[str, typer.Option("--network", "--rede", metavar="CODE", help="network code (rede)")]

GLOBAL: dict[str, str | None] = {"database_url": None, "log_level": None}


def settings(option: str | None = None) -> Settings:
    """The environment's settings, the `--database-url` given here or globally winning."""
    from pydantic import ValidationError

    from flageemonitor.server.core.config import Settings

    try:
        return Settings.from_env(database_url=option or GLOBAL["database_url"])
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise fail(f"settings: {problems}") from None


def secret_box(option: str | None = None) -> SecretBox:
    """The box sealing config secrets with the key file from the settings."""
    from flageemonitor.server.core.secretbox import SecretBox

    return SecretBox(settings(option).key_file)


def database_url(option: str | None) -> str:
    return settings(option).database_url


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say what went wrong in one line (JSON under --json) and return the Exit to raise."""
    from flageemonitor.cli_style import emit_error

    emit_error(message, code)
    return typer.Exit(code)


def open_engine(url: str, *, readonly: bool = False) -> Engine:
    """An engine for `url`; a malformed URL, or (read-only) a database that does not exist yet,
    is one clear line. Read-only use never creates a database file."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from flageemonitor.server.core.config import URL_HINT, sqlite_path
    from flageemonitor.server.core.db import make_engine

    path = sqlite_path(url)
    if readonly and path is not None and not path.exists():
        raise fail(f"no database at {path} (create it with: flageemonitor-server db upgrade; "
                   "or give --database-url / FLAGEEMONITOR_DATABASE_URL)")
    try:
        return make_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        scheme = url.split("://", 1)[0]
        raise fail(f"database URL {scheme}://…: {exc}; use {URL_HINT}") from None


@contextmanager
def session(option: str | None, migrate: bool = True, *, readonly: bool = False) -> Iterator[Session]:
    """A committed session on a migrated database; errors become one clear line and exit 1.

    `readonly`: the database must already exist at the latest schema; nothing is created or migrated.
    """
    from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

    from flageemonitor.server import migrate as migrations
    from flageemonitor.server.core.db import make_sessionmaker, session_scope

    engine = open_engine(database_url(option), readonly=readonly)
    try:
        if readonly:
            current, head = migrations.current_revision(engine), migrations.head_revision()
            if current != head:
                raise fail(f"the database is at schema {current or 'none'}, this version needs {head}: "
                           "run flageemonitor-server db upgrade")
        elif migrate:
            migrations.upgrade(engine)
        with session_scope(make_sessionmaker(engine)) as s:
            yield s
    except FlageeError as exc:
        raise fail(str(exc)) from None
    except OperationalError as exc:
        raise fail(f"database {engine.url.render_as_string(hide_password=True)} unavailable: {exc.orig}") from None
    except SQLAlchemyError as exc:  # one line naming the database error, never the statement's values
        reason = " ".join(str(exc.orig if isinstance(exc, DBAPIError) else exc).split())[:300]
        raise fail(f"database error ({type(exc).__name__}): {reason}") from None
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
