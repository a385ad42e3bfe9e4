"""`inspection tokens create|list|revoke`: API tokens for stations."""

from __future__ import annotations

import typer

from inspection.cli.common import default_by, echo_json
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


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else "-"


@app.command("list")
def tokens_list(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """API tokens (never the tokens themselves): id, station, prefix, created, last used, revoked."""
    infos = in_pipeline(ctx, lambda pipe: station_tokens.list_tokens(pipe, station=station), errors.InputError)
    if as_json:
        echo_json([t.to_dict() for t in infos])
        return
    if not infos:
        typer.echo("no API tokens")
    for t in infos:
        state = f"revoked {_when(t.revoked_at)}" if t.revoked_at else "active"
        typer.echo(
            f"{t.id:>4}  {t.station:<20} {t.prefix}…  created {_when(t.created_at)} by {t.created_by or '-'}"
            f"  last used {_when(t.last_used)}  {state}"
        )


@app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    token_id: int = typer.Argument(..., help="the id `inspection tokens list` shows"),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Revoke a token at once: the station's next request with it is refused (401)."""
    info = in_pipeline(
        ctx,
        lambda pipe: station_tokens.revoke_token(pipe, token_id=token_id, by=default_by(by), reason=reason),
        errors.NotFound,
    )
    typer.echo(f"revoked token {info.id} ({info.prefix}…) of station {info.station}")
