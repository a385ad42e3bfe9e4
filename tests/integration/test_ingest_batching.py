"""Ingest with micro-batching on (INSPECTION_SCORE_BATCH_SIZE > 1): concurrent requests share forward
passes, every item gets its own result, and the time-out and model failures still send items to people."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from inspection import store
from inspection.config import Settings
from inspection.core.domain import Localisation, Prediction, RouteKind
from inspection.core.scoring import Scored
from inspection.services import context, ingest, policies
from inspection.services.ingest_scoring import PreparingScorer
from tests.fakes import BrightnessScorer, Models, level_for, png


class BatchingScorer:
    """Brightness as score, split like vision.predictor.Predictor: per-image prepare, batched forward."""

    version = "batch-1"

    def __init__(self, *, forward_seconds: float = 0.05, fail: bool = False) -> None:
        self.forward_seconds = forward_seconds
        self.fail = fail
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def prepare_image(self, image: np.ndarray, *, localisation: Localisation | None = None) -> float:
        return float(np.mean(image)) / 255.0

    def score_prepared(self, items: Sequence[float]) -> list[Scored]:
        with self._lock:
            self.batches.append(len(items))
        time.sleep(self.forward_seconds)  # one forward pass, whatever the batch size
        if self.fail:
            raise RuntimeError("forward failed")
        return [Scored(Prediction(self.version, s), np.full((8, 8), s, np.float32)) for s in items]

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        return self.score_prepared([self.prepare_image(im) for im in images])


def _app(tmp_path: Path, scorer: object, **settings: object) -> context.Pipeline:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    s = Settings(data_dir=data, models_dir=tmp_path / "models", **settings)  # type: ignore[arg-type]
    app = context.Pipeline.create(s, scorer_factory=Models({"baseline": scorer}))
    policies.set_policy(app, station="s1", by="eve", reason="test", level="partial", pass_below=0.1,
                        reject_above=0.9, audit_rate=0.0)
    return app


def _ingest_concurrently(app: context.Pipeline, levels: list[int]) -> list[ingest.IngestResult]:
    with ThreadPoolExecutor(len(levels)) as pool:
        return list(pool.map(lambda i: ingest.inspect(app, data=png(levels[i], seed=i), station="s1"),
                             range(len(levels))))


def test_the_fake_is_a_preparing_scorer_and_the_plain_fake_is_not() -> None:
    assert isinstance(BatchingScorer(), PreparingScorer)
    assert not isinstance(BrightnessScorer(), PreparingScorer)


def test_concurrent_requests_share_forward_passes_and_keep_their_own_results(tmp_path: Path) -> None:
    scorer = BatchingScorer(forward_seconds=0.2)
    app = _app(tmp_path, scorer, score_batch_size=8, score_batch_wait_ms=100.0)
    try:
        levels = [level_for(0.02), level_for(0.98), level_for(0.5)] * 2
        results = _ingest_concurrently(app, levels)
        assert max(scorer.batches) > 1 and sum(scorer.batches) == len(levels)
        routes = [r.inspection.route for r in results]
        assert routes == [RouteKind.AUTO_PASS, RouteKind.AUTO_REJECT, RouteKind.REVIEW] * 2
        for r, level in zip(results, levels, strict=True):
            assert r.inspection.score == pytest.approx(level / 255.0, abs=1e-3)  # the seed pixel moves the mean
        with app.read() as session:  # one heatmap per item, on disk before the response
            for r in results:
                (pred,) = store.predictions_for(session, inspection_id=r.inspection.id)
                assert pred.heatmap_path and app.resolve(pred.heatmap_path).stat().st_size > 0
    finally:
        app.close()


def test_batch_size_one_scores_each_request_alone(tmp_path: Path) -> None:
    scorer = BatchingScorer(forward_seconds=0.05)
    app = _app(tmp_path, scorer)  # the default: no batcher, score() per request
    try:
        _ingest_concurrently(app, [level_for(0.02)] * 4)
        assert scorer.batches == [1, 1, 1, 1]
    finally:
        app.close()


def test_a_batched_model_failure_or_time_out_goes_to_a_person(tmp_path: Path) -> None:
    failing = _app(tmp_path / "a", BatchingScorer(fail=True), score_batch_size=4, score_batch_wait_ms=50.0)
    slow = _app(tmp_path / "b", BatchingScorer(forward_seconds=3.0), score_batch_size=4,
                score_batch_wait_ms=10.0, score_timeout_seconds=0.5)
    try:
        for app, words in ((failing, "forward failed"), (slow, "time-out")):
            for r in _ingest_concurrently(app, [level_for(0.02)] * 3):  # would be an automatic pass
                assert r.inspection.route == RouteKind.REVIEW and r.inspection.decided_by is None
                assert r.model_error is not None and words in r.model_error
    finally:
        failing.close()
        slow.close()


def test_the_batch_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSPECTION_SCORE_BATCH_SIZE", "8")
    monkeypatch.setenv("INSPECTION_SCORE_BATCH_WAIT_MS", "3.5")
    s = Settings()
    assert (s.score_batch_size, s.score_batch_wait_ms) == (8, 3.5)
    monkeypatch.setenv("INSPECTION_SCORE_BATCH_SIZE", "0")
    with pytest.raises(ValueError):
        Settings()


def _rows(app: context.Pipeline) -> int:
    with app.read() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(store.InspectionRow)).scalar_one())


def test_a_failed_image_or_heatmap_write_stores_no_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writes run beside decoding and the inserts, but a failure still fails the request before any row
    is committed."""
    app = _app(tmp_path, BrightnessScorer())
    try:
        def disk_full(fd: int) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as m:
            m.setattr(os, "fsync", disk_full)
            with pytest.raises(OSError, match="No space"):
                ingest.inspect(app, data=png(level_for(0.02), seed=1), station="s1")

        put_image = app.images.put

        def broken_heatmap_disk(key: str, data: bytes) -> None:
            if key.endswith(".heatmap.png"):
                raise OSError(5, "I/O error")
            put_image(key, data)

        monkeypatch.setattr(app.images, "put", broken_heatmap_disk)
        with pytest.raises(OSError, match="I/O error"):
            ingest.inspect(app, data=png(level_for(0.02), seed=2), station="s1")
        assert _rows(app) == 0
    finally:
        app.close()
