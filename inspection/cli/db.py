"""`inspection db upgrade`: the database schema."""

from __future__ import annotations

import typer

from inspection import store
from inspection.cli.common import fail
from inspection.config import Settings
from inspection.store.db import safe_url

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the database schema to the latest version."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = store.make_engine(settings.database_url)
        store.upgrade_database(engine)
        rev = store.current_revision(engine)
        engine.dispose()
    except Exception as exc:  # unreachable database, bad URL, failed migration: one line, not a traceback
        raise fail(f"cannot upgrade {safe_url(settings.database_url)}: {exc}") from None
    typer.echo(f"database at revision {rev}: {safe_url(settings.database_url)}")
