"""Evaluate a model artifact on a labelled ImageFolder: ranking, calibration, automation coverage and
localisation (pointing game)."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from inspection.core.metrics import auroc, average_precision, coverage_at_risk, expected_calibration_error
from inspection.vision.dataset import Example, list_imagefolder, truth_mask
from inspection.vision.predictor import Predictor
from inspection.vision.preprocess import peak_point

# Pointing-game tolerance (Zhang et al., 2016): a hit if the heatmap peak lies within 15 px of the truth.
POINTING_TOLERANCE_PX = 15
RISKS = (0.005, 0.01)


@dataclass(frozen=True)
class ItemResult:
    path: str
    label: int
    score: float | None
    error: str | None
    hit: bool | None  # pointing game (positives with ground truth only)
    gate: tuple[str, ...] = ()  # the domain gate's reasons: no automatic decision for this image


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray) -> bool:
    h, w = mask.shape
    x, y = peak_point(heatmap, (w, h))
    r = POINTING_TOLERANCE_PX
    x0, x1 = max(0, int(x) - r), min(w, int(x) + r + 1)
    y0, y1 = max(0, int(y) - r), min(h, int(y) + r + 1)
    yy, xx = np.nonzero(mask[y0:y1, x0:x1])
    if len(xx) == 0:
        return False
    return bool(np.min((xx + x0 - x) ** 2 + (yy + y0 - y) ** 2) <= r * r)


def score_dataset(predictor: Predictor, root: Path, examples: list[Example], *, batch: int = 16) -> list[ItemResult]:
    results: list[ItemResult] = []
    bar = tqdm(total=len(examples), desc="evaluating", unit="img", file=sys.stderr, leave=False)
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        prepared = [predictor.prepare_file(e.path) for e in chunk]
        for ex, prep, scored in zip(chunk, prepared, predictor.score_prepared(prepared), strict=True):
            hit = None
            if ex.label and scored.heatmap is not None:
                mask = truth_mask(root, ex, prep.frame_wh)
                if mask is not None and mask.any():
                    hit = pointing_hit(scored.heatmap, mask)
            pred = scored.prediction
            gate = tuple(f.reason for f in scored.gate)
            results.append(ItemResult(str(ex.path), ex.label, pred.score, pred.error, hit, gate))
        bar.update(len(chunk))
    bar.close()
    return results


def summarize(results: list[ItemResult]) -> dict[str, Any]:
    ok = [r for r in results if r.score is not None]
    scores = np.array([r.score for r in ok], dtype=np.float64)
    labels = np.array([r.label for r in ok], dtype=np.int64)
    out: dict[str, Any] = {"n": len(ok), "n_errors": len(results) - len(ok)}
    if len(ok) and 0 < labels.sum() < len(labels):
        out["auroc"] = round(auroc(scores, labels), 5)
        out["average_precision"] = round(average_precision(scores, labels), 5)
    out["accuracy"] = round(float(np.mean((scores >= 0.5) == (labels == 1))), 5) if len(ok) else None
    out["ece"] = round(expected_calibration_error(scores, labels), 5) if len(ok) else None
    out["coverage_at_risk"] = {str(r): round(coverage_at_risk(scores, labels, r), 5) for r in RISKS} if len(ok) else {}
    hits = [r.hit for r in results if r.hit is not None]
    if hits:
        out["pointing_game"] = round(float(np.mean(hits)), 5)
        out["pointing_game_n"] = len(hits)
    stopped = [r for r in ok if r.gate]
    # Scored images the domain gate would send to a person (ingest never decides them automatically).
    out["gate_stopped"] = len(stopped)
    out["gate_stopped_share"] = round(len(stopped) / len(ok), 5) if ok else None
    out["gate_reasons"] = dict(Counter(g.split(":")[0] for r in stopped for g in r.gate).most_common())
    out["errors"] = [f"{r.path}: {r.error}" for r in results if r.error]
    return out


def evaluate(predictor: Predictor, data: Path, *, positive: str = "scratch") -> dict[str, Any]:
    examples = list_imagefolder(data, positive=positive)
    report = summarize(score_dataset(predictor, data, examples))
    report["model_version"] = predictor.version
    return report
