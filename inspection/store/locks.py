"""Mutual exclusion between server processes (and machines) through the database they share.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock` / `pg_advisory_lock`) held on one
pooled connection for the duration; if that connection or its process dies, PostgreSQL releases the
lock, so a crashed holder never blocks the others. SQLite (one machine by design): an `flock` on a
file beside the database file, released by the kernel when the process dies. In-memory SQLite is
one process by definition: always granted.

The lock key is a stable 64-bit number derived from a name, so every process agrees on it. A waiting
`exclusive` may be given a bound (`wait_s`): a hung holder then gives `LockTimeout` rather than a
process that waits forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

__all__ = ["LockTimeout", "exclusive", "lock_key", "try_exclusive"]

log = logging.getLogger("inspection.store")

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout expires
_POLL_S = 0.05  # how often a bounded wait on a file lock tries again


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the caller agreed to wait."""


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name` (PostgreSQL's bigint range)."""
    return int.from_bytes(hashlib.sha256(f"inspection:{name}".encode()).digest()[:8], "big", signed=True)


def _lock_file(engine: Engine, name: str) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(f"{database}.{name}.lock")
    return path if path.parent.is_dir() else None  # no directory: SQLite's own error says so on connect


@contextmanager
def _pg_lock(engine: Engine, name: str, *, wait_s: float | None) -> Iterator[bool]:
    """wait_s: None waits for ever, 0 tries once, otherwise waits at most that long."""
    key = lock_key(name)
    with engine.connect() as conn:
        got = _pg_acquire(conn, key, wait_s=wait_s)
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


def _pg_acquire(conn: sa.Connection, key: int, *, wait_s: float | None) -> bool:
    if wait_s == 0:
        return bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
    if wait_s is not None:
        # Local to this transaction (is_local=true), so the pooled connection keeps its default;
        # PostgreSQL's lock_timeout bounds advisory-lock waits too. 0 would mean "no limit": at least 1 ms.
        timeout = f"{max(1, round(wait_s * 1000))}ms"
        conn.execute(sa.text("SELECT set_config('lock_timeout', :t, true)"), {"t": timeout})
    try:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
    except sa.exc.OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
            raise
        conn.rollback()
        return False
    return True


@contextmanager
def _file_lock(path: Path | None, *, wait_s: float | None) -> Iterator[bool]:
    """wait_s: None waits for ever, 0 tries once, otherwise waits at most that long."""
    if path is None:
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield _flock(fd, wait_s=wait_s)  # closing the descriptor below releases the lock
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _flock(fd: int, *, wait_s: float | None) -> bool:
    if wait_s is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    # flock has no timeout of its own: try without blocking until the deadline.
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)


@contextmanager
def _lock(engine: Engine, name: str, *, wait_s: float | None) -> Iterator[bool]:
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, name, wait_s=wait_s) as got:
            yield got
    else:
        with _file_lock(_lock_file(engine, name), wait_s=wait_s) as got:
            yield got


@contextmanager
def try_exclusive(engine: Engine, *, name: str) -> Iterator[bool]:
    """Yields True to the one process holding lock `name` now, False at once to everyone else."""
    with _lock(engine, name, wait_s=0) as got:
        yield got


@contextmanager
def exclusive(engine: Engine, *, name: str, wait_s: float | None = None) -> Iterator[None]:
    """Waits until this process holds lock `name` (e.g. schema upgrades: one process at a time);
    with `wait_s`, raises LockTimeout after waiting that long instead of waiting for ever."""
    with _lock(engine, name, wait_s=wait_s) as got:
        if not got:
            raise LockTimeout(
                f"lock {name!r} is still held by another process after {wait_s:g} s; if that process "
                "hangs, stop it (a stopped or crashed holder releases the lock)"
            )
        yield
