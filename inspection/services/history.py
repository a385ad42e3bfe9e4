"""The labelled history as core `LabelledScore`s: the one path from the store's labelled-history
query to every number that replays it (threshold suggestion, the engineer screen's what-if,
calibration, the shadow report). The weighting rule lives with the query (`store.audit_weight`):
a blind audit label weighs 1 / audit_rate of the policy in force, every other label 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from inspection import store
from inspection.core.domain import Label, LabelledScore
from inspection.services import registry
from inspection.services.context import Pipeline

__all__ = ["HistoryStats", "labelled_history", "labelled_scores", "model_names", "station_history"]


@dataclass(frozen=True)
class HistoryStats:
    n: int
    n_audit: int
    n_scratch: int
    model_version: str | None
    unaudited_auto: int  # automatic decisions under policies with audit_rate 0: not represented
    warnings: tuple[str, ...] = ()


def labelled_scores(rows: Iterable[store.LabelledRow]) -> list[LabelledScore]:
    """Rows with scores as LabelledScores. A prediction that failed (model error, time-out) keeps a
    NaN score: that phone would go to a person under any thresholds."""
    return [
        LabelledScore(math.nan if r.score is None else r.score, Label(r.label), r.weight, r.audit) for r in rows
    ]


def model_names(app: Pipeline, version: str) -> set[str]:
    """The names predictions of `version` may carry: its directory and its declared version."""
    return registry.declared_versions(app.settings.models_dir, version)


def labelled_history(
    app: Pipeline,
    *,
    station: str | None = None,
    model_version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[LabelledScore], HistoryStats]:
    """Weighted labelled history. `model_version=None` takes the production-role scores (whatever
    version served); a version takes that model's scores in any role (production, shadow, canary)."""
    scores = store.ScoreFilter() if model_version is None else store.ScoreFilter(model_names(app, model_version))
    with app.read() as session:
        rows = store.labelled_history(session, station=station, since=since, until=until, scores=scores)
        n_unaudited = store.unaudited_automatic(session, station=station)
    history = labelled_scores(rows)
    warnings = []
    if n_unaudited:
        warnings.append(
            f"{n_unaudited} automatic decisions were made under policies with audit_rate 0: no label "
            "stands for them, so the rates below describe the reviewed and audited phones only"
        )
    n_audit = sum(h.audit for h in history)
    n_scratch = sum(h.label is Label.SCRATCH for h in history)
    stats = HistoryStats(len(history), n_audit, n_scratch, model_version, n_unaudited, tuple(warnings))
    return history, stats


def station_history(
    app: Pipeline, *, station: str | None, model_version: str | None = None
) -> tuple[str, list[LabelledScore], HistoryStats]:
    """(version, history, stats) as `inspection thresholds suggest` and the engineer screen's what-if
    replay it: the station's labels scored by `model_version`, default the current production model."""
    version = model_version or registry.current_state(app).production
    history, stats = labelled_history(app, station=station, model_version=version)
    return version, history, stats
