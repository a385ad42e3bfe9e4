"""Candidate against production: the promotion verdict on held-out metrics (pure), and the
comparison on the live items both models scored while the candidate ran in shadow or canary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator

from inspection import store
from inspection.core.stats import confusion
from inspection.services.context import Pipeline
from inspection.services.registry import Report, declared_versions, model_dir
from inspection.services.reports import SHADOW_LEVELS
from inspection.services.validation import validate_station

__all__ = ["API", "Comparison", "Disagreement", "ItemImage", "compare", "confusion_items", "worse_than_production"]

API = "/api/v1"  # image links in comparisons (same prefix as inspection.api.app)


def _metric(summary: dict[str, Any], key: str) -> float | None:
    v = summary.get(key)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def worse_than_production(candidate: dict[str, Any], production: dict[str, Any]) -> str | None:
    """Why the candidate is worse on the same held-out items, or None when it is not.

    Ranking first (AUROC: thresholds can move, ranking cannot), then accuracy at 0.5 when AUROC
    is undefined (one class held out); a tie is not worse.
    """
    for key in ("auroc", "accuracy"):
        c, p = _metric(candidate, key), _metric(production, key)
        if c is not None and p is not None:
            if c < p:
                return f"held-out {key} {c:.4f} < production {p:.4f}"
            return None
    return None


def _none_if_nan(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


# An undefined statistic (no items, constant scores) is None, in Python and in JSON alike.
Finite = Annotated[float | None, AfterValidator(_none_if_nan)]


class Disagreement(Report):
    inspection_id: int
    station: str
    candidate_score: float
    production_score: float
    production_version: str
    human_label: str | None
    image_path: str
    link: str


class Comparison(Report):
    version: str
    n: int  # items both scored
    agreement: Finite  # share with the same call at 0.5
    agreement_interval: tuple[float, float]
    kappa: Finite
    correlation: Finite  # Pearson, of the scores
    candidate_accuracy: float | None  # on the items with a human label
    production_accuracy: float | None
    n_labelled: int
    disagreements_total: int
    disagreements: list[Disagreement]


def _correlation(c: np.ndarray, p: np.ndarray) -> float | None:
    if len(c) >= 2 and np.std(c) > 0 and np.std(p) > 0:
        return float(np.corrcoef(c, p)[0, 1])
    return None


def _accuracies(pairs: Sequence[store.ScorePair]) -> tuple[int, float | None, float | None]:
    """(labelled items, candidate accuracy, production accuracy) at 0.5 against the human labels."""
    labelled = [x for x in pairs if x.human_label in ("scratch", "ok")]
    if not labelled:
        return 0, None, None
    truth = [x.human_label == "scratch" for x in labelled]
    cand = float(np.mean([(x.candidate_score >= 0.5) == t for x, t in zip(labelled, truth, strict=True)]))
    prod = float(np.mean([(x.production_score >= 0.5) == t for x, t in zip(labelled, truth, strict=True)]))
    return len(labelled), cand, prod


def _link(inspection_id: int) -> str:
    return f"{API}/inspections/{inspection_id}/image"


def _disagreements(app: Pipeline, pairs: Sequence[store.ScorePair]) -> list[Disagreement]:
    """Items the two models call differently at 0.5, largest score gap first."""
    dis = [
        Disagreement(**asdict(x) | {"image_path": str(app.resolve(x.image_path)), "link": _link(x.inspection_id)})
        for x in pairs
        if (x.candidate_score >= 0.5) != (x.production_score >= 0.5)
    ]
    dis.sort(key=lambda d: (-abs(d.candidate_score - d.production_score), d.inspection_id))
    return dis


def compare(app: Pipeline, *, version: str, limit: int = 50, station: str | None = None) -> Comparison:
    """Candidate `version` against production on the items both scored (shadow or canary)."""
    path = model_dir(app, version)
    names = declared_versions(path.parent, path.name)
    with app.read() as session:
        pairs = store.score_pairs(session, candidate_versions=names, station=station)
    c = np.array([x.candidate_score for x in pairs], dtype=np.float64)
    p = np.array([x.production_score for x in pairs], dtype=np.float64)
    conf = confusion(list(c >= 0.5), list(p >= 0.5))
    n_labelled, cand_acc, prod_acc = _accuracies(pairs)
    dis = _disagreements(app, pairs)
    return Comparison(
        version=path.name,
        n=len(pairs),
        agreement=conf.agreement,
        agreement_interval=conf.agreement_interval,
        kappa=conf.kappa,
        correlation=_correlation(c, p),
        candidate_accuracy=cand_acc,
        production_accuracy=prod_acc,
        n_labelled=n_labelled,
        disagreements_total=len(dis),
        disagreements=dis[: max(0, limit)],
    )


class ItemImage(Report):
    """One stored item for an image gallery: its picture and a caption."""

    inspection_id: int
    station: str
    image_path: str  # absolute
    caption: str


def confusion_items(
    app: Pipeline, *, station: str | None, model_scratch: bool, inspector_scratch: bool, limit: int = 48
) -> tuple[int, list[ItemImage]]:
    """(count, newest `limit` items) behind one cell of the shadow report's confusion matrix: the
    same rows `reports.shadow_report` counts (reviewed under shadow / ai_assist, not audits, valid
    production score), model scratch at score ≥ 0.5."""
    st = validate_station(station) if station is not None else None
    with app.read() as session:
        rows = store.labelled_history(
            session,
            station=st,
            levels=SHADOW_LEVELS,
            audit=False,
            scores=store.ScoreFilter(valid_only=True),
        )
    cell = [
        r
        for r in rows
        if r.score is not None and (r.score >= 0.5) == model_scratch and (r.label == "scratch") == inspector_scratch
    ]
    cell.sort(key=lambda r: r.inspection_id, reverse=True)
    return len(cell), [
        ItemImage(
            inspection_id=r.inspection_id,
            station=r.station,
            image_path=str(app.resolve(r.image_path)),
            caption=f"#{r.inspection_id} {r.station}: score {float(r.score or 0.0):.3f}, inspector {r.label}",
        )
        for r in cell[: max(0, limit)]
    ]
