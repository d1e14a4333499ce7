"""The store databases ("concentradores"): which ones, and connections to them.

- Which: `CONCENTRADORES` (objects with `ip` and optionally `loja`) wins over
  `PARAM_IP_CONCENTRADORES` (addresses).
- MySQL/MariaDB (`DB_USER`, `DB_PASS`, `DB_PORT`, database per query) through PyMySQL;
  PostgreSQL (`DB_PG_USER`/`DB_PG_PASS`, falling back to `DB_USER`/`DB_PASS`, `DB_PG_DB`,
  `DB_PG_PORT`) through psycopg 3. Never a CLI, never a password on a command line.
- Every failure becomes a `StoreDbError` whose text names address, port and database and never
  the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flageemonitor.core.config_model import BotConfig
from flageemonitor.core.errors import ActionFailed, InventoryError
from flageemonitor.core.hosts import HostFilter
from flageemonitor.core.redact import Redactor
from flageemonitor.proxy.actions.base import ActionOutcome


class StoreDbError(InventoryError):
    """A store database could not be reached, refused the login or failed a query."""


@dataclass(frozen=True)
class Concentrator:
    address: str
    loja: str | None = None


def concentrators(config: BotConfig) -> list[Concentrator]:
    """Each store database: `CONCENTRADORES` wins over `PARAM_IP_CONCENTRADORES`; blanks ignored."""
    if config.CONCENTRADORES:
        return [Concentrator(c.ip.strip(), str(c.loja) if c.loja is not None else None)
                for c in config.CONCENTRADORES if c.ip.strip()]
    return [Concentrator(ip.strip()) for ip in config.PARAM_IP_CONCENTRADORES if ip.strip()]


def parse_loja(value: Any) -> int | None:
    """A store from `--loja` / `--arg loja=`: `LOJA001`, `loja1` or `1`; None when empty."""
    if value in (None, ""):
        return None
    try:
        return HostFilter(loja=str(value)).loja_number
    except ValueError as exc:
        raise ActionFailed(str(exc)) from None


def nothing_configured() -> ActionOutcome:
    """The outcome of a store-database action on a proxy without store databases: nothing to do
    is not a failure (the default schedule runs the collectors everywhere)."""
    return ActionOutcome(ok=True, detail="no store databases configured (PARAM_IP_CONCENTRADORES or "
                                         "CONCENTRADORES): nothing to do", data={"concentrators": []})


def mysql_error(address: str, config: BotConfig, database: str, exc: BaseException) -> StoreDbError:
    """A one-line error for a PyMySQL exception (code and server message, no password)."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = args[0] if args else "?"
    message = str(args[1]) if len(args) > 1 else (str(exc) or type(exc).__name__)
    return StoreDbError(Redactor([config.DB_PASS]).redact(
        f"store database {address}:{config.DB_PORT}/{database}: {message} (error {code})"))


def mysql_connect(address: str, config: BotConfig, database: str, *, timeout: float, **kwargs: Any) -> Any:
    """A PyMySQL connection to `database` on the concentrator at `address`."""
    import pymysql

    if not config.DB_USER:
        raise StoreDbError("DB_USER is not set: the store databases cannot be read")
    try:
        return pymysql.connect(host=address, port=config.DB_PORT, user=config.DB_USER,
                               password=config.DB_PASS or "", database=database, charset="utf8mb4",
                               connect_timeout=max(1, int(timeout)), read_timeout=max(1, int(timeout)),
                               write_timeout=max(1, int(timeout)), **kwargs)
    except pymysql.MySQLError as exc:
        raise mysql_error(address, config, database, exc) from None


def mysql_stream(conn: Any, sql: str, params: tuple[Any, ...], *, chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Rows of `sql` through an unbuffered server-side cursor, `chunk` at a time: memory does not
    grow with the table."""
    import pymysql.cursors

    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql, params)
        while True:
            rows = cur.fetchmany(chunk)
            if not rows:
                return
            yield from rows


@dataclass(frozen=True)
class PgSettings:
    user: str
    password: str
    dbname: str
    port: int


def pg_settings(config: BotConfig) -> PgSettings:
    user = config.DB_PG_USER or config.DB_USER
    if not user:
        raise StoreDbError("DB_PG_USER (or DB_USER) is not set: the NEO databases cannot be read")
    if not config.DB_PG_DB:
        raise StoreDbError("DB_PG_DB is not set: name the NEO database on the concentrators")
    return PgSettings(user, config.DB_PG_PASS or config.DB_PASS or "", config.DB_PG_DB, config.DB_PG_PORT)


def pg_stream(address: str, settings: PgSettings, sql: str, params: tuple[Any, ...], *, timeout: float,
              chunk: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Rows of `sql` through a named (server-side) cursor; errors as StoreDbError."""
    import psycopg

    where = f"store database {address}:{settings.port}/{settings.dbname}"
    try:
        with psycopg.connect(host=address, port=settings.port, user=settings.user, password=settings.password,
                             dbname=settings.dbname, connect_timeout=max(1, int(timeout)),
                             options=f"-c statement_timeout={int(timeout * 1000)}",
                             application_name="flageemonitor") as conn, conn.transaction(), \
                conn.cursor(name="flageemonitor_collect") as cur:
            cur.itersize = chunk
            cur.execute(sql, params)
            yield from cur
    except psycopg.Error as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreDbError(Redactor([settings.password]).redact(f"{where}: {message}")) from None
