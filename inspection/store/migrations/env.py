"""Alembic environment. Driven programmatically by `inspection.store.upgrade_database`, which passes
an open connection in `config.attributes["connection"]`; a URL in `sqlalchemy.url` works too."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from inspection.store.db import make_engine
from inspection.store.tables import METADATA


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        # SQLite cannot ALTER most things: batch mode recreates tables for later migrations.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    # No lock here: `upgrade_database` holds the "schema-upgrade" lock (store/locks.py) around this, so
    # processes starting together against one database migrate one at a time, on SQLite too.
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; run upgrade_database(url)")
run_migrations_online()
