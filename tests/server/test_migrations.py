"""Packaged Alembic migrations: from nothing, and from the first schema with data in it."""

from __future__ import annotations

from sqlalchemy import Column, inspect, text

from flageemonitor.server import migrate
from flageemonitor.server.core.config import normalize_database_url
from flageemonitor.server.core.db import make_engine, make_sessionmaker, session_scope
from flageemonitor.server.models import Base
from flageemonitor.server.services import auth_limits, clients, networks


def test_migrations_create_exactly_the_model_schema(db_url: str) -> None:
    engine = make_engine(normalize_database_url(db_url))
    try:
        migrate.upgrade(engine)
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
        for name, table in Base.metadata.tables.items():
            columns = {c["name"] for c in inspect(engine).get_columns(name)}
            assert columns == {c.name for c in table.columns}, name
            indexes = {i["name"] for i in inspect(engine).get_indexes(name)}
            indexes |= {u["name"] for u in inspect(engine).get_unique_constraints(name)}
            on_columns = {i.name for i in table.indexes if all(isinstance(e, Column) for e in i.expressions)}
            assert on_columns <= indexes, name  # what the pages and ingest rely on (expression indexes aside)
        assert migrate.current_revision(engine) == migrate.head_revision()
        migrate.upgrade(engine)  # idempotent
    finally:
        engine.dispose()


def test_upgrade_from_the_first_schema_keeps_data_and_starts_the_change_generation(db_url: str) -> None:
    engine = make_engine(normalize_database_url(db_url))
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clients (id, name, created_at) VALUES (1, 'old', CURRENT_TIMESTAMP)"))
        migrate.upgrade(engine)
        with session_scope(make_sessionmaker(engine)) as s:
            assert [c.name for c in clients.all_clients(s)] == ["old"]
            assert auth_limits.request_state(s, "192.0.2.1", 0.0, 60) == (auth_limits.Failures(0, 0), 1)
            networks.add(s, "old", "OLD1", "test")
        with session_scope(make_sessionmaker(engine)) as s:
            assert auth_limits.request_state(s, "192.0.2.1", 0.0, 60)[1] == 2  # every change bumps it
    finally:
        engine.dispose()


def test_upgrade_refuses_network_codes_that_differ_only_in_case_and_names_them(db_url: str) -> None:
    import pytest

    from flageemonitor.server.errors import MigrationRefused

    engine = make_engine(normalize_database_url(db_url))
    try:
        migrate.upgrade(engine, "0002")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO clients (id, name, created_at) VALUES (1, 'c', CURRENT_TIMESTAMP)"))
            for i, code in enumerate(("NET1", "net1", "NET2"), 1):
                conn.execute(text("INSERT INTO networks (id, client_id, code, created_at) "
                                  "VALUES (:i, 1, :c, CURRENT_TIMESTAMP)"), {"i": i, "c": code})
        with pytest.raises(MigrationRefused, match=r"differ only in case: net1 \(2 networks\)"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == "0002"  # nothing half-applied
    finally:
        engine.dispose()
