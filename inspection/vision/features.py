"""A compact summary of the model's pooled backbone features: a whitened PCA basis fitted on reference
images, and the out-of-distribution (OOD) score the domain gate checks. Pure numpy.

The OOD score is the squared Mahalanobis distance of an image's features under the probabilistic PCA
model of the reference (the k principal directions with their own variances, plus one isotropic variance
s2 for the D - k others), divided by D so that it is ~1 on the reference:
    ood = (sum_i z_i^2 + Q / s2) / D,   z = scale^-1 * C (f - mean),   Q = |(f - mean) - C^T C (f - mean)|^2,
with s2 = mean Q on the reference / (D - k). The first part (T2) sees an image far along the directions
the reference varies in (exposure, phone colour, pose); the second (Q) sees features outside them, which
is where unfamiliar content lands: on the 360-file degraded corpus of scripts/bench_gate.py, Q catches
a no-phone notebook or a partial phone that T2 misses entirely, and averaging the two equally diluted
Q (its limit rose with T2's heavy tail). The full D x D Mahalanobis distance would need a covariance
from a few hundred images: poorly conditioned, so its smallest, noisiest directions would dominate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["K", "FeaturePCA", "out_of_fold_ood"]

K = 8  # components kept: what the monitor stores per item (f0..f7) and the T2 part of the OOD score
_TINY = 1e-12


def _num(v: float) -> float:
    return float(f"{v:.6g}")  # 6 significant digits: model.json stays readable and diff-able


@dataclass(frozen=True)
class FeaturePCA:
    mean: np.ndarray  # D
    components: np.ndarray  # k x D, orthonormal rows, by falling variance
    scale: np.ndarray  # k: standard deviation of each component on the reference (whitening)
    residual: float  # mean squared reconstruction residual Q on the reference: (D - k) * s2

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    @staticmethod
    def fit(feats: np.ndarray, *, k: int = K) -> FeaturePCA:
        """The basis of `feats` (N x D, N > k). ValueError when there are too few images."""
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] <= k or x.shape[1] < k:
            raise ValueError(f"need more than {k} feature vectors of at least {k} dimensions, got {x.shape}")
        mean = x.mean(axis=0)
        _, sing, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = vt[:k]
        scale = np.maximum(sing[:k] / np.sqrt(x.shape[0] - 1), 1e-6)
        pca = FeaturePCA(mean, components, scale, 1.0)
        residual = float(np.mean(pca._residual(x)))
        return FeaturePCA(mean, components, scale, max(residual, _TINY))

    def project(self, feats: np.ndarray) -> np.ndarray:
        """Whitened components (N x k): ~N(0, 1) each on the reference images."""
        centred = np.asarray(feats, dtype=np.float64) - self.mean
        return np.asarray((centred @ self.components.T) / self.scale)

    def _residual(self, x: np.ndarray) -> np.ndarray:
        centred = x - self.mean
        recon = (centred @ self.components.T) @ self.components
        return np.asarray(np.sum((centred - recon) ** 2, axis=1))

    def ood(self, feats: np.ndarray) -> np.ndarray:
        """OOD score per row of `feats` (see the module doc): ~1 on the reference, larger = less familiar."""
        x = np.asarray(feats, dtype=np.float64)
        t2 = np.sum(self.project(x) ** 2, axis=1)
        rest = self.dim - self.k
        q = self._residual(x) / (self.residual / rest) if rest > 0 else 0.0  # Q / s2
        return np.asarray((t2 + q) / self.dim)

    def to_json(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "k": self.k,
            "mean": [_num(v) for v in self.mean],
            "components": [[_num(v) for v in row] for row in self.components],
            "scale": [_num(v) for v in self.scale],
            "residual": _num(self.residual),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any] | None) -> FeaturePCA | None:
        """None for an absent block; ValueError for a malformed one."""
        if not data:
            return None
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            components = np.asarray(data["components"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
            residual = float(data.get("residual", 1.0))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"monitor.features: {exc}") from exc
        k, dim = components.shape if components.ndim == 2 else (0, 0)
        if mean.shape != (dim,) or scale.shape != (k,) or k == 0 or np.any(scale <= 0) or residual <= 0:
            raise ValueError("monitor.features: mean, components and scale do not fit together")
        return FeaturePCA(mean, components, scale, residual)


def out_of_fold_ood(feats: np.ndarray, *, k: int = K, folds: int = 5) -> np.ndarray:
    """OOD scores of reference images each measured by a basis fitted WITHOUT it (k-fold): in-sample
    scores are biased low (the basis fits its own images' noise), so a limit from them would stop
    too many new in-domain images. Folds are a fixed random permutation, never the input order:
    reference sets often alternate classes, and a basis fitted on one class finds the other unfamiliar."""
    x = np.asarray(feats, dtype=np.float64)
    folds = max(2, min(folds, len(x) // (k + 2)))  # every basis needs more than k images
    fold_of = np.random.default_rng(0).permutation(len(x)) % folds
    out = np.empty(len(x))
    for f in range(folds):
        held = fold_of == f
        out[held] = FeaturePCA.fit(x[~held], k=k).ood(x[held])
    return out
