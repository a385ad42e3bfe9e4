"""The `inspection` command. Each area registers its commands from its own module; imports stay lazy
inside commands so that `inspection --help` does not load torch."""

from __future__ import annotations

import typer

from inspection import __version__, cli_data, cli_engineer, cli_model, cli_pipeline, cli_ui


def build_app() -> typer.Typer:
    app = typer.Typer(
        no_args_is_help=True, add_completion=False, help="Human-in-the-loop scratch inspection for smartphones."
    )

    @app.command()
    def version() -> None:
        """Print the package version."""
        typer.echo(__version__)

    for module in (cli_data, cli_model, cli_pipeline, cli_ui, cli_engineer):
        module.register(app)
    return app


def main() -> None:
    build_app()()
