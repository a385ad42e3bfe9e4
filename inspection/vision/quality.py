"""Quality metrics of the inspected region, for the domain gate (`core.gate`) and its reference.

Computed from what scoring already has: the decoded image and the preprocessing result (the warped
canvas and how the phone was found), so nothing is decoded or localised twice. Measured on the canvas,
not the whole frame: the grey table around the phone says nothing about whether the phone can be judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from inspection.core.gate import GateRanges, ranges_from_samples, reference_quantiles
from inspection.vision.preprocess import Warped

__all__ = ["MIN_REFERENCE", "blockiness", "completeness", "domain_block", "edge_blur", "region_quality"]

# A row whose values all lie within this span is flat: what libjpeg fills in for data it could not
# decode (a cut file) and what a real camera never delivers (sensor noise alone spans more).
_FLAT_SPAN = 2
# Grey levels at or beyond which a flat row is a clipped exposure, not a fill (the gate's brightness
# floors, 8 and 247, are ~3 % from black and white).
_CLIPPED_DARK, _CLIPPED_LIGHT = 8, 247
# Fewer reference images than this give percentile ranges too narrow to mean "the domain": such a
# model gets no domain block (the gate's absolute floors only).
MIN_REFERENCE = 50


def completeness(image: np.ndarray) -> float:
    """Share of the image's rows that carry picture content (not a flat fill): 1.0 for a whole image.
    A flat row clipped at black or white is content (a dark exposure of a black mat, a blown-out
    highlight); libjpeg fills what it could not decode with mid-grey."""
    if image.size == 0:
        return 0.0
    rows = image.reshape(image.shape[0], -1)
    lo, hi = rows.min(axis=1).astype(np.int16), rows.max(axis=1).astype(np.int16)
    flat = (hi - lo <= _FLAT_SPAN) & (lo > _CLIPPED_DARK) & (hi < _CLIPPED_LIGHT)
    return 1.0 - float(np.count_nonzero(flat)) / image.shape[0]


def _period_ratio(diffs: np.ndarray, period: int) -> float:
    at_edge = (np.arange(diffs.size) + 1) % period == 0
    return float(diffs[at_edge].mean() / max(float(diffs[~at_edge].mean()), 1e-6))


def blockiness(image: np.ndarray) -> float:
    """JPEG block artefacts: mean step between neighbouring pixels across 8-px block borders over the
    mean step elsewhere (also at 4 px: a JPEG decoded at half size by DCT scaling has 4-px blocks).
    ~1.0-1.4 for quality 95, 2.5-20 at quality 3-20, where the 8x8 blocks swamp 1-2 px scratches.
    Measured on the image as decoded: resampling (the warp) would smear the block grid."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if min(grey.shape) < 16:
        return 1.0
    # |neighbour steps| as uint8 (absdiff is exact), summed per column / row in int32 (exact: a sum is
    # at most 255 x the side, far below 2^31) by OpenCV (SIMD, GIL released): ~2x faster than numpy's
    # int16 diff on a 2 Mpx frame, and the same means bit for bit (integer sums / count in float64).
    h, w = grey.shape
    dx = cv2.reduce(cv2.absdiff(grey[:, 1:], grey[:, :-1]), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[0] / h
    dy = cv2.reduce(cv2.absdiff(grey[1:, :], grey[:-1, :]), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0] / w
    return max((_period_ratio(dx, p) + _period_ratio(dy, p)) / 2 for p in (8, 4))


# Pre-smoothing of the canvas before its gradients are taken (canvas px): tames pixel noise, which would
# otherwise read as steep edges; it adds the same small width to every edge.
_EDGE_SMOOTH = 0.7
_EDGE_SHARE = 0.995  # the steepest edges: the gradient that 99.5 % of the canvas's pixels stay under
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _grey_span(grey: np.ndarray) -> float:
    """The 1-99 % range of a uint8 image's grey levels (from its histogram: ~30x faster than np.percentile)."""
    cdf = np.cumsum(cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel())
    lo, hi = np.searchsorted(cdf, cdf[-1] * np.array([0.01, 0.99]))
    return float(hi - lo)


def edge_blur(grey: np.ndarray, to_canvas: np.ndarray) -> float:
    """How wide the region's sharpest edges are, in the camera's pixels: the Gaussian sigma a step edge as
    high as the canvas's grey range (1-99 %) would need to rise no faster than its steepest edges do (the
    99.5 % gradient; a step blurred by sigma rises at most 1/(sigma sqrt(2 pi)) of its height per pixel),
    divided by the canvas's magnification. `grey`: the uint8 grey canvas; `to_canvas`: camera -> canvas.

    Why camera pixels: a scratch is 1-4 px wide in the camera's frame whatever the phone's size, so what
    smears it is blur measured there. On the canvas, a small phone defocused by 2 px and enlarged 4x looks
    as blurred as a large one defocused by 8 px and shrunk: the Laplacian's `sharpness` cannot tell them
    apart, this can. Taken along each canvas axis (the phone's sides) and the wider kept: motion blur
    widens the edges across its direction only (a shake of L px reads ~0.4 L). Generated lab phones read
    4.9-6.4 under a Gaussian blur of sigma 3 px, 7.8-8.8 at 6 px, 12.9-14.1 at 12 px, 27-30 under an 81 px
    shake; the baseline's training images 3.4 (median) to 9.5 (99.9 %). inf: no edge at all."""
    smooth = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), _EDGE_SMOOTH)
    span = max(_grey_span(grey), 1.0)
    widest = 0.0
    for axis in (0, 1):  # canvas x (across the phone), then y (along it)
        dx, dy = (1, 0) if axis == 0 else (0, 1)
        slope = np.abs(cv2.Sobel(smooth, cv2.CV_32F, dx, dy, ksize=3)).ravel() / 8.0  # Sobel weighs a step 8x
        k = int(_EDGE_SHARE * (slope.size - 1))
        steep = float(np.partition(slope, k)[k])  # an order statistic: np.percentile is ~10x slower here
        # canvas px per camera px along this canvas axis: the length of the affine's row
        magnification = float(np.hypot(to_canvas[axis, 0], to_canvas[axis, 1]))
        if steep <= 0.0 or magnification <= 0.0:
            return math.inf
        widest = max(widest, span / (steep * _SQRT_2PI * magnification))
    return widest


def region_quality(image: np.ndarray, warped: Warped, *, blocks: float | None = None) -> dict[str, float]:
    """Gate metrics (see core.gate.METRICS) of one image (as searched: possibly reduced) and its warp.

    brightness, contrast: mean and standard deviation of the canvas's grey levels (0-255).
    sharpness: variance of the Laplacian of the grey canvas (falls with blur, rises with noise/blocking).
    edge_blur: see edge_blur(): the width of the region's sharpest edges in the camera's pixels.
    region_px: the found region's shorter side in ORIGINAL pixels (the whole frame's in "resize" mode).
    localisation, aspect: PhoneFit.confidence and the long/short side ratio (phone mode only).
    blockiness: see blockiness(); `blocks` when measured before a resize (else on `image`)."""
    grey = cv2.cvtColor(warped.canvas, cv2.COLOR_BGR2GRAY)
    mean, std = cv2.meanStdDev(grey)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))
    out = {
        "brightness": float(mean[0, 0]),
        "contrast": float(std[0, 0]),
        "sharpness": float(lap_std[0, 0]) ** 2,
        "edge_blur": edge_blur(grey, warped.to_canvas),
        "completeness": completeness(image),
        "blockiness": blockiness(image) if blocks is None else blocks,
    }
    fit = warped.fit
    if fit is None:
        out["region_px"] = float(min(image.shape[:2])) * warped.scale
    else:
        out["region_px"] = fit.size[0] * warped.scale
        if not fit.fixed:  # a station's fixed region (roi/frame) was not found: no confidence or shape to check
            out["localisation"] = fit.confidence
            out["aspect"] = fit.aspect
    return out


def domain_block(
    samples: Iterable[Mapping[str, float]],
    *,
    source: str,
    margin: float = 0.15,
    extra: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The `domain` block of model.json from reference images' metrics (see gate.ranges_from_samples).
    `extra`: metrics measured on another (sub)set of images, e.g. `ood` on the validation images only."""
    rows = list(samples)
    names = sorted({k for r in rows for k in r})
    columns: dict[str, Sequence[float]] = {n: [r[n] for r in rows if n in r] for n in names}
    columns.update(extra or {})
    quantiles = reference_quantiles(columns)
    ranges: GateRanges = ranges_from_samples(columns, source=source, quantiles=quantiles, margin=margin)
    return {**ranges.to_json(), "n": len(rows), "quantiles": list(quantiles), "margin": margin}
