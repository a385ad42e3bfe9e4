"""The small interface between the pipeline and any model (anomalib-style): images in, scores out.

The service layer depends on this protocol only; `inspection.vision.predictor` implements it with torch or
ONNX Runtime, and tests use fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from inspection.core.domain import Localisation, Prediction
from inspection.core.gate import GateFailure


@dataclass(frozen=True)
class Scored:
    """A prediction plus its heatmap: float32 in [0, 1], low resolution, covering the whole original
    frame (resize it to the image size to overlay). None when there is no valid model output."""

    prediction: Prediction
    heatmap: np.ndarray | None
    # The domain gate's verdict on the image this prediction is for: () = inside the model's domain
    # (or not checked, e.g. a fake scorer). Any failure forbids an automatic decision (core.policy).
    gate: tuple[GateFailure, ...] = ()
    quality: dict[str, float] = field(default_factory=dict)  # the metrics the gate checked
    # the image's pooled backbone features on the artifact's PCA basis (k = 8, whitened: ~N(0, 1) on the
    # reference images); () when the model or fake gives none. Monitoring compares them with the reference.
    features: tuple[float, ...] = ()


class Scorer(Protocol):
    version: str

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        """Score decoded HxWx3 uint8 BGR images. Never raises for one bad image: that item gets a
        Prediction with `error` set (score None) and the others are still scored. `localisation`: how
        the station finds the inspected region (None: find the phone)."""
        ...
