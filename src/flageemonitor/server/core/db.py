"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def private_sqlite_file(url: str) -> None:
    """Create the SQLite file (and tighten an existing one, its -wal and -shm) to mode 0600.

    SQLite creates the -wal and -shm files with the database file's permissions, so the config
    history, token hashes and audit log stay readable by the server's user only, whatever the umask.
    """
    from flageemonitor.server.core.config import sqlite_path

    path = sqlite_path(url)
    if path is None or not path.parent.is_dir():
        return  # in-memory, or a directory that does not exist: the driver reports that itself
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for member in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change: the driver decides
            if member.stat().st_mode & 0o077:
                member.chmod(0o600)


def make_engine(url: str) -> Engine:
    # room for every request thread (the threadpool has 40): a request never waits for a connection
    # hide_parameters: an error never carries bound values (a config body, its passwords) into a
    # message, a log line or a traceback
    kwargs: dict[str, Any] = {"pool_size": 10, "max_overflow": 40, "pool_timeout": 10, "hide_parameters": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 15}
    elif url.startswith("postgresql"):
        kwargs["pool_pre_ping"] = True  # a restarted database leaves dead connections in the pool
        # a stopped database must fail health checks fast, not hang them
        kwargs["connect_args"] = {"connect_timeout": 3}
    if url.startswith("sqlite"):
        private_sqlite_file(url)
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
