"""Commands of the web UI area: `inspection serve` and `inspection users …`."""

from __future__ import annotations

import sys

import typer

from inspection.config import Settings


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str | None = typer.Option(None, help="interface to listen on (default 127.0.0.1)"),
        port: int | None = typer.Option(None, help="port (default 7860); a busy port is an error"),
        demo: bool = typer.Option(False, "--demo", help="seed demo users and images (never in production)"),
    ) -> None:
        """Serve the web UI, the HTTP API, /healthz and /metrics."""
        import os

        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        settings = Settings()
        if host is not None:
            settings.host = host
        if port is not None:
            settings.port = port
        settings.demo = settings.demo or demo
        if settings.demo:
            from inspection.services.demo import setup

            setup(settings)
        import uvicorn

        from ui.app import create_web_app

        web = create_web_app(settings)
        typer.echo(
            f"Serving on http://{settings.host}:{settings.port}/  (review: /review/, engineers: /engineer/)"
        )
        uvicorn.run(web, host=settings.host, port=settings.port, log_level="warning")

    users = typer.Typer(no_args_is_help=True, help="People who log in to the web UI, and their roles.")
    app.add_typer(users, name="users")

    @users.command("add")
    def users_add(
        name: str = typer.Argument(..., help="login name"),
        role: str = typer.Option(..., "--role", help="inspector, engineer or admin"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    ) -> None:
        """Add a user (the password is asked for, or read from stdin; stored as an argon2 hash)."""
        from inspection.services import accounts, context, errors

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            with context.Pipeline.create(Settings()) as pipe:
                user = accounts.add_user(pipe, name=name, role=role, password=password, by="cli")
        except errors.InputError as exc:
            raise _fail(str(exc)) from None
        typer.echo(f"added {user.name} ({user.role.value})")

    @users.command("list")
    def users_list() -> None:
        """List users and roles (never passwords)."""
        from inspection.services import accounts, context

        with context.Pipeline.create(Settings()) as pipe:
            rows = accounts.list_users(pipe)
        if not rows:
            typer.echo("no users yet: add one with `inspection users add NAME --role engineer`")
        for u in rows:
            typer.echo(f"{u.name:<24} {u.role:<10} {'active' if u.active else 'inactive':<9} {u.created_at}")
