"""Commands of the web UI area: `inspection serve` and `inspection users …`.

`inspection serve --workers N` runs N server processes on one port (uvicorn's supervisor). Each
worker builds its own app from the environment (`inspection.api.app:web_app_from_env`), so the options
given here travel to them as INSPECTION_* variables. All state lives in the database they share
(sessions, login throttling, deployments, policies, alarms, review leases), the background pass is
made by one process at a time (`services.background`), and `/metrics` from any worker sums all of
them (prometheus_client multiprocess mode in a fresh directory, removed at exit). Another machine
runs the same command with the same INSPECTION_DATABASE_URL (PostgreSQL) and image store.
The web UI runs in one extra process on --ui-port (default port + 1); the workers redirect its pages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import typer

from inspection.cli.context import in_pipeline
from inspection.config import Settings
from inspection.services import accounts, errors
from inspection.services.context import Pipeline, wait_for_database
from inspection.services.demo import setup as seed_demo

users_app = typer.Typer(no_args_is_help=True, help="People who log in to the web UI, and their roles.")


def serve_cmd(
    host: str | None = typer.Option(None, help="interface to listen on (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="port (default 7860); a busy port is an error"),
    demo: bool = typer.Option(False, "--demo", help="seed demo users and images (never in production)"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="server processes sharing the port and the database (PostgreSQL for more machines)"
    ),
    ui_port: int | None = typer.Option(None, "--ui-port", help="with --workers: the web UI's port (default port + 1)"),
) -> None:
    """Serve the web UI, the HTTP API, /healthz and /metrics."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = Settings()
    if host is not None:
        settings.host = host
    if port is not None:
        settings.port = port
    if ui_port is not None:
        settings.ui_port = ui_port
    settings.demo = settings.demo or demo
    if settings.demo:
        # A demo shows everything: the API docs and the metrics are part of what it demonstrates.
        settings.expose_docs = settings.expose_metrics = True
    if not wait_for_database(settings, say=lambda line: typer.echo(line, err=True)):
        raise typer.Exit(1)
    if settings.demo:
        seed_demo(settings)
    if workers > 1:
        _serve_workers(settings, workers=workers)
        return
    # lazy: uvicorn, FastAPI and Gradio take seconds to import and only `serve` needs them
    import uvicorn

    from inspection.api.app import create_web_app

    web = create_web_app(settings)
    typer.echo(f"Serving on http://{settings.host}:{settings.port}/  (review: /review/, engineers: /engineer/)")
    uvicorn.run(web, host=settings.host, port=settings.port, log_level="warning")


def _settings_env(settings: Settings) -> dict[str, str]:
    """What this command may have changed over the environment's settings, as the workers read it."""
    flags = {"demo": settings.demo, "expose_docs": settings.expose_docs, "expose_metrics": settings.expose_metrics}
    env = {f"INSPECTION_{k.upper()}": "true" if v else "false" for k, v in flags.items()}
    ports = {"INSPECTION_PORT": str(settings.port), "INSPECTION_UI_PORT": str(settings.ui_port or settings.port + 1)}
    return env | {"INSPECTION_HOST": settings.host} | ports


def _serve_workers(settings: Settings, *, workers: int) -> None:
    import uvicorn  # lazy, as in serve_cmd

    # The schema is upgraded here, once, so that the workers starting together only find it at head.
    Pipeline.create(settings).close()
    os.environ.update(_settings_env(settings))
    # A fresh directory per run (prometheus_client requires it empty at start), under the operator's
    # PROMETHEUS_MULTIPROC_DIR when set (e.g. a tmpfs), else under the system's temporary directory.
    metrics_dir = tempfile.mkdtemp(prefix="inspection-metrics-", dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ui_port = settings.ui_port or settings.port + 1
    ui = _start_ui_process(settings, ui_port=ui_port)
    typer.echo(
        f"Serving the API on http://{settings.host}:{settings.port}/ with {workers} worker processes;"
        f" the web UI on http://{settings.host}:{ui_port}/  (review: /review/, engineers: /engineer/)"
    )
    try:
        uvicorn.run(
            "inspection.api.app:api_app_from_env",
            factory=True,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_level="warning",
        )
    finally:
        ui.terminate()
        try:
            ui.wait(timeout=15)
        except subprocess.TimeoutExpired:
            ui.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _start_ui_process(settings: Settings, *, ui_port: int) -> subprocess.Popen[bytes]:
    """The web UI in one process of its own: Gradio keeps its event queue and session state in process
    memory, and a browser's requests spread over N workers would miss it ("Session not found")."""
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "inspection.api.app:web_app_from_env"]
    cmd += ["--host", settings.host, "--port", str(ui_port), "--log-level", "warning"]
    return subprocess.Popen(cmd, env=os.environ.copy())


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
