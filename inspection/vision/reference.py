"""An artifact's reference distributions, measured on reference images exactly as ingest measures items.

Two blocks of model.json come from one pass over the images:
- `domain` (the domain gate's accepted ranges, core.gate), now including `ood`: the OOD score of
  vision.features, its limit from out-of-fold scores of the same images;
- `monitor` (read by monitoring): the features' PCA basis and the reference samples of every monitored
  value (frame metrics as ingest stores them, score, regions per image, f0..f7) and shares.

Frame metrics are vision.images.image_metrics of the whole decoded frame (what ingest stores), not the
gate's region metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspection.core.drift import Reference
from inspection.vision.features import FeaturePCA, K, out_of_fold_ood
from inspection.vision.images import ImageError, image_metrics, read_image_file
from inspection.vision.predictor import Predictor, Prepared
from inspection.vision.quality import MIN_REFERENCE, domain_block

__all__ = ["FRAME_METRICS", "Measured", "ReferenceRow", "build_blocks", "measure", "measure_files", "monitor_block"]

FRAME_METRICS = ("brightness", "contrast", "sharpness", "colour_cast", "width", "height")


@dataclass(frozen=True)
class ReferenceRow:
    """One scored reference image."""

    frame: Mapping[str, float]  # FRAME_METRICS of the whole frame
    quality: Mapping[str, float]  # the gate's region metrics (without ood)
    score: float
    n_regions: int
    features: np.ndarray  # raw pooled backbone features (D)


@dataclass(frozen=True)
class Measured:
    rows: list[ReferenceRow]
    unjudgeable: int  # decoded but not scorable (no phone found, model error): ingest's "unjudgeable"

    @property
    def n(self) -> int:
        return len(self.rows) + self.unjudgeable


def measure(predictor: Predictor, images: Iterable[np.ndarray], *, batch: int = 16) -> Measured:
    """Score decoded BGR frames as ingest does (full frame in, the predictor localises and warps)."""
    rows: list[ReferenceRow] = []
    unjudgeable = 0
    pending: list[tuple[dict[str, float], Prepared]] = []

    def flush() -> None:
        nonlocal unjudgeable
        scored = predictor.score_prepared_raw([p for _, p in pending])
        for (frame, prep), (s, feats) in zip(pending, scored, strict=True):
            if s.prediction.score is None or feats is None:
                unjudgeable += 1
                continue
            quality = {k: v for k, v in prep.quality.items() if k != "ood"}
            rows.append(ReferenceRow(frame, quality, float(s.prediction.score), len(s.prediction.regions), feats))
        pending.clear()

    for image in images:
        m = image_metrics(image)
        frame = {name: float(getattr(m, name)) for name in FRAME_METRICS}
        pending.append((frame, predictor.prepare_image(image)))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    return Measured(rows, unjudgeable)


def measure_files(predictor: Predictor, paths: Iterable[Path]) -> tuple[Measured, int]:
    """measure() on image files; also how many could not be read or decoded (left out)."""
    unreadable = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal unreadable
        for path in paths:
            try:
                yield read_image_file(path)
            except ImageError:
                unreadable += 1

    measured = measure(predictor, frames())
    return measured, unreadable


def monitor_block(measured: Measured, pca: FeaturePCA | None, *, source: str, unreadable: int = 0) -> dict[str, Any]:
    """The `monitor` block of model.json (see .coord/CONTRACT.md); `unreadable`: files that did not decode."""
    rows = measured.rows
    values: dict[str, list[float]] = {name: [r.frame[name] for r in rows] for name in FRAME_METRICS}
    values["score"] = [r.score for r in rows]
    values["n_regions"] = [float(r.n_regions) for r in rows]
    if pca is not None and rows:
        z = pca.project(np.stack([r.features for r in rows]))
        values.update({f"f{i}": list(z[:, i]) for i in range(pca.k)})
    total = max(measured.n + unreadable, 1)
    shares = {"unjudgeable": measured.unjudgeable / total, "unreadable": unreadable / total}
    reference = Reference.from_values(values, shares, source=source, n=measured.n + unreadable)
    block: dict[str, Any] = {"source": source, "n": len(rows), "reference": reference.to_json()}
    if pca is not None:
        block["features"] = pca.to_json()
    return block


def build_blocks(
    measured: Measured,
    *,
    source: str,
    qualities: Sequence[Mapping[str, float]] | None = None,
    domain_source: str | None = None,
    margin: float = 0.15,
    unreadable: int = 0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(domain, monitor) blocks. `qualities`: the gate metrics the domain ranges come from (default: the
    measured rows'; `domain_source` then says what they are); the `ood` limit always comes from the
    measured rows (out-of-fold scores). With
    fewer than MIN_REFERENCE rows there is no domain block (the gate's floors only) and no ood range;
    with too few for a basis (<= 2 k), no features."""
    rows = measured.rows
    feats = np.stack([r.features for r in rows]) if rows else np.zeros((0, 0))
    pca = FeaturePCA.fit(feats, k=K) if len(rows) > 2 * K else None
    extra = {"ood": list(out_of_fold_ood(feats, k=K))} if pca is not None and len(rows) >= MIN_REFERENCE else {}
    gate_rows = list(qualities) if qualities is not None else [r.quality for r in rows]
    enough = len(gate_rows) >= MIN_REFERENCE
    domain = domain_block(gate_rows, source=domain_source or source, margin=margin, extra=extra) if enough else {}
    return domain, monitor_block(measured, pca, source=source, unreadable=unreadable)
