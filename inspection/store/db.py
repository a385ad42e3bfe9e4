"""Engine, sessions and migrations: the same code on SQLite (one machine, WAL) and PostgreSQL.

Repository functions take a Session and never commit: the caller (a services module) owns the
transaction, so one use case is one transaction.

SQLite note: every transaction opened through `write_session` starts with BEGIN IMMEDIATE, so
writers queue on the busy timeout instead of failing with "database is locked" when a deferred
reader tries to upgrade; read-only work uses `read_session` (plain BEGIN, readers never block).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from inspection.store.locks import exclusive

__all__ = [
    "MIGRATIONS_DIR",
    "SCHEMA_LOCK",
    "UPGRADE_LOCK_WAIT_S",
    "AlreadyExists",
    "current_revision",
    "database_problem",
    "insert_ignore",
    "is_postgres",
    "make_engine",
    "read_session",
    "safe_url",
    "upgrade_database",
    "write_session",
]

_READONLY = "inspection_readonly"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SCHEMA_LOCK = "schema-upgrade"  # the lock `upgrade_database` holds (locks.exclusive)
UPGRADE_LOCK_WAIT_S = 300.0  # longer than any migration here takes; then LockTimeout names the lock


class AlreadyExists(ValueError):
    """A row with the same unique key is stored already (the message names the key)."""


def safe_url(url: str) -> str:
    """The database URL without its password, for messages (the CLI's errors)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: say so rather than echo a string that may hold a password
        return "<invalid database URL>"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        _create_private_file(sa.make_url(url).database)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _create_private_file(database: str | None) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use the umask, often 0644). SQLite
    gives its -wal and -shm files the database file's permissions, so they are 0600 too. An existing
    file keeps the mode its administrator chose."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists() or not path.parent.is_dir():
        return  # a missing directory: SQLite's own error says so on first connect
    with contextlib.suppress(FileExistsError):  # another process created it first
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def database_problem(url: str) -> str | None:
    """Why the database cannot be reached now (one line), or None when a connection opens."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect():
            return None
    except sa.exc.DBAPIError as exc:
        text = str(exc.orig or exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    finally:
        engine.dispose()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it would defer it) and emit our own below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the
        # last transactions, and it never corrupts the database.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One transaction that writes: committed on success, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work (plain BEGIN on SQLite so that it never waits for writers)."""
    ro = engine.execution_options(**{_READONLY: True})
    with Session(ro, expire_on_commit=False) as session, session.begin():
        yield session


def upgrade_database(
    url_or_engine: str | Engine, *, revision: str = "head", lock_wait_s: float = UPGRADE_LOCK_WAIT_S
) -> None:
    """Run `alembic upgrade <revision>` programmatically (no alembic.ini needed), one process at a time.

    Raises LockTimeout when another process has held the upgrade lock for over `lock_wait_s` seconds."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        # Several processes may start at once against one fresh database (`serve --workers N`, a
        # second machine): two would both find no schema, both create it, and one would fail on a
        # duplicate table. So one migrates while the others wait, then find the schema at head and do
        # nothing. The wait is bounded so that a hung upgrade elsewhere is an error, not a silent hang.
        with exclusive(engine, name=SCHEMA_LOCK, wait_s=lock_wait_s), engine.connect() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
            connection.commit()
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def insert_ignore(session: Session, table: sa.Table, values: dict[str, Any], *, conflict: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on both dialects (two writers may race on a unique key)."""
    ins = pg.insert(table) if is_postgres(session) else sqlite_dialect.insert(table)
    session.execute(ins.values(**values).on_conflict_do_nothing(index_elements=conflict))
