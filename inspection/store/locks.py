"""Mutual exclusion between server processes (and machines) through the database they share.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock` / `pg_advisory_lock`) held on one
pooled connection for the duration; if that connection or its process dies, PostgreSQL releases the
lock, so a crashed holder never blocks the others. SQLite (one machine by design): an `flock` on a
file beside the database file, released by the kernel when the process dies. In-memory SQLite is
one process by definition: always granted.

The lock key is a stable 64-bit number derived from a name, so every process agrees on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["exclusive", "lock_key", "try_exclusive"]

log = logging.getLogger("inspection.store")


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (PostgreSQL's bigint range)."""
    return int.from_bytes(hashlib.sha256(f"inspection:{name}".encode()).digest()[:8], "big", signed=True)


def _lock_file(engine: Engine, name: str) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(f"{database}.{name}.lock")


@contextmanager
def _pg_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    key = lock_key(name)
    with engine.connect() as conn:
        fn = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        got = conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": key}).scalar()
        got = True if wait else bool(got)
        conn.commit()  # a session-level lock outlives the transaction; an idle one would hold a snapshot
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                except sa.exc.DBAPIError:
                    # Never hand a connection that may still hold the lock back to the pool: closing
                    # it ends the database session, which releases the lock.
                    log.warning("advisory lock %s: unlock failed, dropping the connection", name)
                    conn.invalidate()


@contextmanager
def _file_lock(path: Path | None, *, wait: bool) -> Iterator[bool]:
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        yield got  # closing the descriptor below releases the lock
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextmanager
def try_exclusive(engine: Engine, *, name: str) -> Iterator[bool]:
    """Yields True to the one process holding lock `name` now, False at once to everyone else."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, name, wait=False) as got:
            yield got
    else:
        with _file_lock(_lock_file(engine, name), wait=False) as got:
            yield got


@contextmanager
def exclusive(engine: Engine, *, name: str) -> Iterator[None]:
    """Waits until this process holds lock `name` (e.g. schema upgrades: one process at a time)."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, name, wait=True):
            yield
    else:
        with _file_lock(_lock_file(engine, name), wait=True):
            yield
