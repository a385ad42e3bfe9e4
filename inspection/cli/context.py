"""The run-time state commands share, carried by Typer's context object instead of closures or globals.

`build_app(scorer_factory=...)` puts a `CliState` into the root context (`ctx.obj`); sub-commands inherit
it, and every command that needs the database opens its Pipeline with `open_pipeline(ctx)`. Tests pass
fake models this way; the real command line passes nothing and gets the models under models_dir.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import typer

from inspection.cli.common import fail
from inspection.config import Settings
from inspection.services.context import Pipeline, ScorerFactory
from inspection.store.db import safe_url

T = TypeVar("T")

ScorerFactoryMaker = Callable[[Settings], ScorerFactory]


@dataclass(frozen=True)
class CliState:
    """`scorer_factory(settings) -> ScorerFactory` swaps the models (tests use fakes); None: the real ones."""

    scorer_factory: ScorerFactoryMaker | None = None


def open_pipeline(ctx: typer.Context) -> Pipeline:
    """Settings from the environment, the Pipeline over them; an unreachable database is one line, exit 2."""
    state = ctx.obj if isinstance(ctx.obj, CliState) else CliState()
    settings = Settings()
    factory = state.scorer_factory(settings) if state.scorer_factory is not None else None
    try:
        return Pipeline.create(settings, scorer_factory=factory)
    except Exception as exc:  # unreachable database, bad URL: one line, not a traceback
        url = safe_url(settings.database_url)
        raise fail(f"cannot open the database {url}: {type(exc).__name__}: {exc}") from None


def in_pipeline(
    ctx: typer.Context,
    use_case: Callable[[Pipeline], T],
    *known: type[Exception],
    code: Callable[[Exception], int] | int = 2,
) -> T:
    """Run one use case in a fresh Pipeline; the `known` errors become `error: …` and exit `code`
    (a number, or a function of the error for use cases that refuse with exit 1)."""
    with open_pipeline(ctx) as pipe:
        try:
            return use_case(pipe)
        except known as exc:
            raise fail(str(exc), code(exc) if callable(code) else code) from None
