"""The `inspection` command. Each area registers its commands from its own module; imports stay lazy
inside commands so that `inspection --help` does not load torch."""

from __future__ import annotations

import typer

from inspection import __version__
from inspection.cli import data as cli_data
from inspection.cli import engineer as cli_engineer
from inspection.cli import model as cli_model
from inspection.cli import pipeline as cli_pipeline
from inspection.cli import serve as cli_ui


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
