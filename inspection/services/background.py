"""Background work when several server processes (and machines) share one database.

Every server process runs the same background loop (`api.monitoring.MonitorLoop`: monitoring
evaluation, the ramp). A pass is made by one process at a time: the one that wins the database lock
for it (a PostgreSQL advisory lock; on SQLite a file lock beside the database), the others skip
that tick and try again at their next one. Leadership is thus per pass, not elected once: when the
process holding it dies, its database session ends, the lock is released, and another process makes
the next pass — no heartbeat, no failover delay beyond one interval.

The database still guards each write on its own (an alarm opens once: a partial unique index; the
monitor state is an upsert), so a pass made outside the loop (`inspection monitor evaluate`) stays
correct; the lock keeps passes from interleaving, which would repeat drift looks (the false-alarm
budget counts each look once) or advance a ramp step twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from inspection.services.context import Pipeline
from inspection.store.locks import try_exclusive

__all__ = ["BACKGROUND_LOCK", "turn"]

BACKGROUND_LOCK = "background-pass"


@contextmanager
def turn(app: Pipeline, *, name: str = BACKGROUND_LOCK) -> Iterator[bool]:
    """True while this process holds the pass `name`; False when another process is making it now."""
    with try_exclusive(app.engine, name=name) as mine:
        yield mine
