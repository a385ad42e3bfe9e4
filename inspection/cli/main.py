"""The `inspection` command: top-level commands and one Typer sub-app per command group, from their modules.

Commands are defined at module level; what they share at run time (the models to score with) travels in
the root context object (`ctx.obj`, see cli/context.py), so every `build_app()` is independent.
"""

from __future__ import annotations

import typer

from inspection import __version__
from inspection.cli import (
    book,
    data,
    db,
    export,
    imports,
    model,
    models,
    monitor,
    pipeline,
    policy,
    qc,
    reports,
    serve,
    station,
    thresholds,
    tokens,
    trigger,
)
from inspection.cli.context import CliState, ScorerFactoryMaker


def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


def build_app(*, scorer_factory: ScorerFactoryMaker | None = None) -> typer.Typer:
    """The whole command line. `scorer_factory(settings) -> ScorerFactory` swaps the models (tests use fakes)."""
    app = typer.Typer(
        no_args_is_help=True,
        add_completion=False,
        help="Human-in-the-loop scratch inspection for smartphones.",
        context_settings={"obj": CliState(scorer_factory=scorer_factory)},  # inherited by every sub-command
    )
    # Commands are listed in `--help` in this order (top-level commands first, then the groups).
    app.command("version")(version)
    app.command("synth")(data.synth_cmd)
    app.command("train")(model.train_cmd)
    app.command("evaluate")(model.evaluate_cmd)
    app.command("predict")(model.predict_cmd)
    app.command("ingest")(pipeline.ingest_cmd)
    app.command("serve")(serve.serve_cmd)
    app.add_typer(trigger.retrain_app(), name="retrain")  # `retrain [OPTIONS]` and `retrain trigger …`
    app.command("export")(export.export_cmd)
    app.add_typer(policy.app, name="policy")
    app.add_typer(station.app, name="station")
    app.add_typer(tokens.app, name="tokens")
    app.add_typer(reports.audit_app, name="audit")
    app.add_typer(reports.shadow_app, name="shadow")
    app.add_typer(db.app, name="db")
    app.add_typer(serve.users_app, name="users")
    app.add_typer(thresholds.app, name="thresholds")
    app.add_typer(models.app, name="models")
    app.add_typer(monitor.app, name="monitor")
    app.add_typer(imports.app, name="import")
    app.add_typer(qc.app, name="qc")
    app.add_typer(book.app, name="book")
    return app


def main() -> None:
    build_app()()
