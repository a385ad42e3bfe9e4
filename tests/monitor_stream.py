"""Streams for the monitoring tests: small real camera-like images (320x180 JPEG), a fake scorer
whose scores do not depend on exposure, a model artifact whose model.json carries the reference of
normal images, and precomputed samples for the long unshifted streams."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from inspection.core.domain import Prediction
from inspection.core.drift import Reference
from inspection.core.scoring import Scored
from inspection.services import monitoring
from inspection.services.context import Pipeline
from inspection.vision.images import decode_image, image_metrics

W, H = 320, 180


def frame(seed: int, *, exposure: float = 1.0) -> bytes:
    """A phone on a table: a textured background, a dark rounded body with a lighter screen, camera
    noise; `exposure` scales every pixel (0.75 = 25 % darker). JPEG quality 90."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(115, 140)
    yy, xx = np.mgrid[0:H, 0:W]
    img = base + 12 * np.sin(xx / 23.0 + rng.uniform(0, 6)) + 6 * np.cos(yy / 17.0)
    x0, y0 = int(rng.integers(70, 110)), int(rng.integers(25, 45))
    img[y0 : y0 + 120, x0 : x0 + 150] = rng.uniform(40, 60)
    img[y0 + 8 : y0 + 112, x0 + 8 : x0 + 142] = rng.uniform(150, 175)
    img = img[..., None] * np.array([1.0, 1.02, 0.97]) + rng.normal(0, 4, (H, W, 3))
    out = np.clip(img * exposure, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


class SteadyScorer:
    """Scores 0.001-0.011 from a checksum of the pixels: the score distribution does not move with
    exposure (so only the input rules should see a darker line), and calibrated scores this low keep
    the label-free escape bound quiet; no regions, no features."""

    version = "monitor-fake"

    def score(self, images: Sequence[np.ndarray], **_kw: object) -> list[Scored]:
        return [Scored(Prediction(self.version, steady_score(img), latency_ms=2.0), None) for img in images]


def steady_score(img: np.ndarray) -> float:
    return 0.001 + 0.01 * (zlib.crc32(img[::7, ::7].tobytes()) % 1000) / 1000.0


def write_model_with_reference(models_dir: Path, *, name: str = "baseline", n: int = 300, seed: int = 10_000) -> None:
    """An artifact directory whose model.json holds `monitor.reference` of n normal frames, measured as
    ingest measures them (the decoded JPEG)."""
    values: dict[str, list[float]] = {k: [] for k in ("brightness", "contrast", "sharpness", "colour_cast")}
    values |= {"width": [], "height": [], "score": [], "n_regions": []}
    for i in range(n):
        img = decode_image(frame(seed + i), max_pixels=10**7)
        m = image_metrics(img)
        for k in ("brightness", "contrast", "sharpness", "colour_cast", "width", "height"):
            values[k].append(float(getattr(m, k)))
        values["score"].append(steady_score(img))
        values["n_regions"].append(0.0)
    ref = Reference.from_values(values, {"unjudgeable": 0.0, "unreadable": 0.0}, source="test frames", n=n)
    path = models_dir / name
    path.mkdir(parents=True, exist_ok=True)
    meta = {"version": SteadyScorer.version, "monitor": {"source": "test frames", "n": n, "reference": ref.to_json()}}
    (path / "model.json").write_text(json.dumps(meta))


def record_stream(
    app: Pipeline,
    *,
    station: str,
    n: int,
    seed: int,
    brightness_shift: float = 0.0,
    start: datetime | None = None,
) -> None:
    """n precomputed samples (no images) straight through `monitoring.record_sample`, in one transaction."""
    rng = np.random.default_rng(seed)
    t = start or datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    with app.write() as session:
        for i in range(n):
            monitoring.record_sample(
                app,
                session,
                inspection_id=None,
                station=station,
                at=t + timedelta(seconds=i),
                model_version="m",
                metrics={
                    "brightness": float(rng.normal(128, 8)) + brightness_shift,
                    "contrast": float(rng.normal(40, 4)),
                    "sharpness": float(rng.lognormal(5, 0.3)),
                    "colour_cast": float(rng.gamma(2.0, 1.5)),
                    "width": 1920,
                    "height": 1080,
                },
                flags={"auto_pass": True, "unjudgeable": bool(rng.random() < 0.02)},
                score=float(rng.beta(1, 400)),
                n_regions=0,
                latency_ms=float(rng.gamma(4, 10)),
                features=[float(x) for x in rng.normal(0, 1, 8)],
            )
