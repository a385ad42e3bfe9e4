"""`inspection tokens create`: API tokens for stations."""

from __future__ import annotations

import typer

from inspection.cli.context import in_pipeline
from inspection.services import errors
from inspection.services import tokens as station_tokens

app = typer.Typer(no_args_is_help=True, help="API tokens for stations.")


@app.command("create")
def tokens_create(
    ctx: typer.Context,
    station: str = typer.Option(..., "--station"),
    by: str | None = typer.Option(None, "--by"),
) -> None:
    """Create an API token for a station. It is shown once; only its hash is stored."""
    token = in_pipeline(ctx, lambda pipe: station_tokens.create_token(pipe, station=station, by=by), errors.InputError)
    typer.echo(token)
