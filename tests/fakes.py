"""Fakes shared by the pipeline tests: deterministic scorers, a settable clock, test images."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from inspection.core.domain import Localisation, Prediction, Region
from inspection.core.scoring import Scored


class BrightnessScorer:
    """Score = mean brightness / 255: a test picks the score by choosing the grey level."""

    def __init__(self, version: str = "fake-1") -> None:
        self.version = version
        self.calls = 0

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        out = []
        for img in images:
            self.calls += 1
            s = float(np.mean(img)) / 255.0
            heat = np.full((8, 8), s, dtype=np.float32)
            region = Region(x=1, y=2, w=3, h=4, score=s)
            out.append(Scored(Prediction(self.version, s, (region,), latency_ms=1.5), heat))
        return out


class RaisingScorer:
    version = "broken-1"

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        raise RuntimeError("CUDA out of memory")


class NaNScorer:
    version = "nan-1"

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        return [Scored(Prediction(self.version, float("nan")), None) for _ in images]


class SlowScorer:
    version = "slow-1"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        time.sleep(self.seconds)
        return [Scored(Prediction(self.version, 0.01), None) for _ in images]


@dataclass
class Models:
    """A ScorerFactory over a dict of named scorers (what the registry will hand the pipeline)."""

    scorers: dict[str, object] = field(default_factory=dict)

    def __call__(self, name: str) -> object:
        if name not in self.scorers:
            raise FileNotFoundError(f"no model {name!r}")
        return self.scorers[name]


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2025, 3, 1, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def png(level: int, *, size: int = 64, seed: int = 0) -> bytes:
    """A grey PNG of the given level (exact: PNG is lossless); `seed` varies one pixel so that
    otherwise equal images get different hashes."""
    img = np.full((size, size, 3), level, dtype=np.uint8)
    img[0, 0, 0] = seed % 256
    img[0, 1, 0] = (seed // 256) % 256
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def jpeg(width: int, height: int, *, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def level_for(score: float) -> int:
    """Grey level whose BrightnessScorer score is closest to `score`."""
    return round(score * 255)


def enqueue(engine: object, *, n: int, station: str = "s1", start: datetime | None = None,
            scores: Sequence[float | None] | None = None, audit: bool = False) -> list[int]:  # fmt: skip
    """Put n review items straight into the store (no decoding or scoring): for queue tests."""
    import sqlalchemy as sa

    from inspection import store

    start = start or datetime(2025, 3, 1, 7, 0, tzinfo=UTC)
    with store.write_session(engine) as session:  # type: ignore[arg-type]
        img = store.get_or_add_image(
            session,
            image=store.ImageRow(
                sha256=f"{n:064x}",
                path="images/00/x.png",
                size_bytes=1,
                first_station=station,
                received_at=start,
            ),
        )
        rows = []
        for i in range(n):
            s = scores[i] if scores is not None else None
            rows.append(
                {
                    "image_id": img.id, "station": station, "received_at": start + timedelta(milliseconds=i),
                    "policy_version": 1, "level": "partial", "route": "review", "show_model": True,
                    "audit": audit, "reason": "test", "status": "queued",
                    "priority": abs(s - 0.5) if s is not None else 0.0, "score": s,
                }
            )  # fmt: skip
        ids = (
            session.execute(
                sa.insert(store.InspectionRow).returning(store.InspectionRow.id),
                rows,  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
    return sorted(int(i) for i in ids)
