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
    from sqlalchemy.orm import Session

    from flageemonitor.server.core.config import Settings
    from flageemonitor.server.core.secretbox import SecretBox

DbUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL; default FLAGEEMONITOR_DATABASE_URL or ./flageemonitor.db"),
]
JsonOut = Annotated[bool, typer.Option("--json", help="machine-readable output")]

GLOBAL: dict[str, str | None] = {"database_url": None}


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
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def session(option: str | None, migrate: bool = True) -> Iterator[Session]:
    """A committed session on a migrated database; errors become one clear line and exit 1."""
    from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

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
    except SQLAlchemyError as exc:  # one line naming the database error, never the statement's values
        reason = " ".join(str(exc.orig if isinstance(exc, DBAPIError) else exc).split())[:300]
        raise fail(f"database error ({type(exc).__name__}): {reason}") from None
    finally:
        engine.dispose()


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
