"""Fixtures and helpers for the engineers' loop tests (tuning, retrain, deploy, export).

Two tiny real model artifacts are trained once per test session (a few seconds each) from
generated phone photos; the cache below makes that true even though several test modules import
these fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from inspection import store
from inspection.config import Settings
from inspection.services import ingest, review
from inspection.services.context import Pipeline
from tests.fakes import BrightnessScorer, FakeClock, Models, png

TINY_CANVAS = (128, 64)
_CACHE: dict[str, Any] = {}


def tiny_spec() -> Any:
    from inspection.vision.preprocess import PreprocessSpec

    return PreprocessSpec(mode="phone", canvas_h=TINY_CANVAS[0], canvas_w=TINY_CANVAS[1])


@pytest.fixture(scope="session")
def phone_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 generated 640x360 phone photos as an ImageFolder (scratch/, ok/, masks/)."""
    if "photos" not in _CACHE:
        from inspection.vision.synth import generate

        out = tmp_path_factory.mktemp("eng-photos") / "data"
        generate(out, count=48, seed=11, size=(640, 360), progress=False)
        _CACHE["photos"] = out
    return Path(_CACHE["photos"])


@pytest.fixture(scope="session")
def two_models(tmp_path_factory: pytest.TempPathFactory, phone_photos: Path) -> dict[str, Path]:
    """Two real artifacts, `model-a` and `model-b` (different seeds and data halves)."""
    if "models" not in _CACHE:
        from inspection.vision.synth import generate
        from inspection.vision.train import TrainConfig, train

        root = tmp_path_factory.mktemp("eng-models")
        other = root / "data-b"
        generate(other, count=32, seed=23, size=(640, 360), progress=False)
        out = {}
        for name, data, seed in (("model-a", phone_photos, 0), ("model-b", other, 1)):
            cfg = TrainConfig(epochs=1, seed=seed, preprocess=tiny_spec())
            train(data, root / name, config=cfg, version=name, log=lambda _m: None)
            out[name] = root / name
        _CACHE["models"] = out
    return dict(_CACHE["models"])


@pytest.fixture
def two_model_settings(db_settings: Settings, two_models: dict[str, Path]) -> Settings:
    """Settings over SQLite and PostgreSQL with both real artifacts installed; model-a serves."""
    settings = db_settings.model_copy(update={"default_model": "model-a"})
    install_models(settings, two_models)
    return settings


def install_models(settings: Settings, models: dict[str, Path]) -> None:
    """Hard-link the artifacts into settings.models_dir (cheap; each test gets its own tree)."""
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    for name, src in models.items():
        dst = settings.models_dir / name
        if not dst.exists():
            shutil.copytree(src, dst, copy_function=_link_or_copy)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def fake_model_dirs(settings: Settings, names: list[str]) -> None:
    """Minimal model.json files so that the registry knows fake-scored versions."""
    for name in names:
        d = settings.models_dir / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.json").write_text(json.dumps({"version": name, "metrics": {}}))


class InvertedScorer(BrightnessScorer):
    """Score = 1 - brightness: disagrees with BrightnessScorer wherever the image is not mid-grey."""

    def score(self, images: Any, *, localisation: Any = None) -> Any:
        from dataclasses import replace

        out = super().score(images, localisation=localisation)
        return [type(s)(replace(s.prediction, score=1.0 - float(s.prediction.score or 0.0)), s.heatmap) for s in out]


def fake_pipeline(
    settings: Settings, names: list[str], *, clock: FakeClock | None = None, inverted: tuple[str, ...] = ()
) -> Pipeline:
    """Versions `names` scored by fakes (the first is the default production model)."""
    fake_model_dirs(settings, names)
    settings = settings.model_copy(update={"default_model": names[0]})
    scorers = Models({n: (InvertedScorer(n) if n in inverted else BrightnessScorer(n)) for n in names})
    return Pipeline.create(settings, scorer_factory=scorers, clock=clock or FakeClock())  # type: ignore[arg-type]


def varied(image_path: Path, i: int) -> bytes:
    """The photo re-encoded with one pixel changed: a new image hash, the same content."""
    img = cv2.imread(str(image_path))
    img[0, 0] = [(i * 37) % 256, (i // 256) % 256, (i * 11) % 256]
    img[0, 1] = [i % 256, 0, 0]
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def photo_files(root: Path) -> list[tuple[Path, str]]:
    return [(p, cls) for cls in ("scratch", "ok") for p in sorted((root / cls).glob("*.*"))]


def label_queue(app: Pipeline, *, truth: dict[int, str], station: str, inspector: str = "ines") -> int:
    """Claim and label every queued item of `station` with its true label; returns how many."""
    n = 0
    while (task := review.claim_next(app, inspector=inspector, station=station)) is not None:
        review.submit_label(
            app, inspection_id=task.inspection_id, inspector=inspector, label=truth[task.inspection_id]
        )
        n += 1
    return n


def ingest_labelled(app: Pipeline, files: list[tuple[bytes, str]], *, station: str = "s1") -> list[int]:
    """Ingest images under human_only and label them all: stored human labels for retraining."""
    truth = {}
    for data, label in files:
        res = ingest.inspect(app, data=data, station=station, actor="test")
        truth[res.inspection.id] = label
    label_queue(app, truth=truth, station=station)
    return sorted(truth)


def png_bytes(level: int, *, seed: int, size: int = 64) -> bytes:
    return png(level, seed=seed, size=size)


def deployment_events(app: Pipeline) -> list[store.EventRow]:
    with app.read() as session:
        return [e for e in store.list_events(session, limit=1000) if e.kind.startswith("deployment.")]


@pytest.fixture
def eng_app(db_settings: Settings) -> Iterator[Pipeline]:
    """A pipeline over SQLite and PostgreSQL with two fake-scored registered versions."""
    with fake_pipeline(db_settings, ["v1", "v2", "v3"], inverted=("v3",)) as app:
        yield app
