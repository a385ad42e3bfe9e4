"""Commands of the web UI area: `inspection serve` and `inspection users …`."""

from __future__ import annotations

import os
import sys

import typer

from inspection.cli.context import in_pipeline
from inspection.config import Settings
from inspection.services import accounts, errors
from inspection.services.context import wait_for_database
from inspection.services.demo import setup as seed_demo

users_app = typer.Typer(no_args_is_help=True, help="People who log in to the web UI, and their roles.")


def serve_cmd(
    host: str | None = typer.Option(None, help="interface to listen on (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 7860); a busy port is an error"),
    demo: bool = typer.Option(False, "--demo", help="seed demo users and images (never in production)"),
) -> None:
    """Serve the web UI, the HTTP API, /healthz and /metrics."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    settings.demo = settings.demo or demo
    if settings.demo:
        # A demo shows everything: the API docs and the metrics are part of what it demonstrates.
        settings.expose_docs = settings.expose_metrics = True
    if not wait_for_database(settings, say=lambda line: typer.echo(line, err=True)):
        raise typer.Exit(1)
    if settings.demo:
        seed_demo(settings)
    # lazy: uvicorn, FastAPI and Gradio take seconds to import and only `serve` needs them
    import uvicorn

    from inspection.api.app import create_web_app

    web = create_web_app(settings)
    typer.echo(f"Serving on http://{settings.host}:{settings.port}/  (review: /review/, engineers: /engineer/)")
    uvicorn.run(web, host=settings.host, port=settings.port, log_level="warning")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="login name"),
    role: str = typer.Option(..., "--role", help="inspector, engineer or admin"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
) -> None:
    """Add a user (the password is asked for, or read from stdin; stored as an argon2 hash)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = in_pipeline(
        ctx, lambda pipe: accounts.add_user(pipe, name=name, role=role, password=password, by="cli"), errors.InputError
    )
    typer.echo(f"added {user.name} ({user.role.value})")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """List users and roles (never passwords)."""
    rows = in_pipeline(ctx, accounts.list_users)
    if not rows:
        typer.echo("no users yet: add one with `inspection users add NAME --role engineer`")
    for u in rows:
        typer.echo(f"{u.name:<24} {u.role:<10} {'active' if u.active else 'inactive':<9} {u.created_at}")
