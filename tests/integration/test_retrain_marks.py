"""Inspectors' marks used by retraining (issue 11): a scratch label's marks become the item's mask in the
training ImageFolder (`masks/<sha256>.png`, read by vision.dataset.truth_mask like any ground truth), so
the marked cells supervise the heatmap; marks on an OK label or of an undone label are not used; a real
retrain with marked items trains with those masks and records them in its data snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from inspection.config import Settings
from inspection.services import ingest, retrain, review
from inspection.services.context import Pipeline
from inspection.vision.dataset import list_imagefolder, truth_mask
from tests.engineer_fixtures import (  # noqa: F401  (pytest fixtures)
    fake_pipeline,
    phone_photos,
    photo_files,
    png_bytes,
    tiny_spec,
    two_model_settings,
    two_models,
    varied,
)

BOX = [{"kind": "box", "points": [[10, 12], [30, 20]]}]


def _label_all(app: Pipeline, marks: dict[int, list[dict[str, Any]]], truth: dict[int, str]) -> None:
    while (task := review.claim_next(app, inspector="ines", station="s1")) is not None:
        i = task.inspection_id
        review.submit_label(app, inspection_id=i, inspector="ines", label=truth[i], marks=marks.get(i))


def _ingest(app: Pipeline, files: list[tuple[bytes, str]]) -> dict[int, str]:
    return {ingest.inspect(app, data=d, station="s1", actor="test").inspection.id: cls for d, cls in files}


def test_marked_scratch_items_carry_their_mask_into_the_training_folder(db_settings: Settings, tmp_path: Path) -> None:
    with fake_pipeline(db_settings, ["v1"]) as app:
        # the last one in the queue is labelled last: its label is undone, marks and all
        files = [(png_bytes(200, seed=i), "scratch") for i in range(2)]
        files += [(png_bytes(20, seed=50 + i), "ok") for i in range(2)] + [(png_bytes(200, seed=9), "scratch")]
        truth = _ingest(app, files)
        marked, unmarked, undone = sorted(i for i, c in truth.items() if c == "scratch")
        ok_marked = min(i for i, c in truth.items() if c == "ok")
        stroke = [{"kind": "stroke", "points": [[5, 40], [60, 40]], "width": 4}]
        _label_all(app, {marked: BOX, undone: stroke, ok_marked: stroke}, truth)
        assert review.undo(app, inspector="ines").task.inspection_id == undone
        review.claim_next(app, inspector="ines", station="s1")
        review.submit_label(app, inspection_id=undone, inspector="ines", label="scratch")  # relabelled, no marks

        items = retrain.labelled_items(app)
        root = tmp_path / "train"
        retrain.write_links(app, items, root)
        ids, digest = retrain.write_mark_masks(app, items, root)
        assert ids == [marked] and len(digest) == 64

    by_sha = {i.sha256: i.inspection_id for i in items}
    masks = {}
    for ex in list_imagefolder(root, positive="scratch"):
        masks[by_sha[ex.path.stem]] = truth_mask(root, ex, (64, 64))
    assert {i for i, m in masks.items() if m is not None} == {marked}
    mask = masks[marked]
    assert mask is not None and mask.shape == (64, 64)
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 30, 12, 20)  # the box, in frame pixels

    train, test = retrain.holdout_split(items, fraction=0.4)
    assert retrain.snapshot_hash(train, test, "b") == retrain.snapshot_hash(train, test, "b", "")  # no marks: as ever
    assert retrain.snapshot_hash(train, test, "b", digest) != retrain.snapshot_hash(train, test, "b")


def _box_of(mask_path: Path) -> list[dict[str, Any]]:
    """A box around the generator's true scratch mask: what an inspector would drag."""
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    x, y, w, h = cv2.boundingRect((mask > 127).astype(np.uint8))
    return [{"kind": "box", "points": [[x, y], [x + w, y + h]]}]


@pytest.mark.slow
def test_retrain_with_marked_items_supervises_the_heatmap_with_their_masks(
    two_model_settings: Settings,  # noqa: F811
    phone_photos: Path,  # noqa: F811
) -> None:
    files = photo_files(phone_photos)
    with Pipeline.create(two_model_settings) as app:
        truth = _ingest(app, [(varied(p, i), cls) for i, (p, cls) in enumerate(files)])
        paths = dict(zip(sorted(truth), [p for p, _ in files], strict=True))
        marks = {i: _box_of(phone_photos / "masks" / f"{paths[i].stem}.png") for i, c in truth.items()
                 if c == "scratch" and (phone_photos / "masks" / f"{paths[i].stem}.png").is_file()}  # fmt: skip
        assert marks
        _label_all(app, marks, truth)
        logs: list[str] = []
        result = retrain.retrain(app, by="erin", epochs=1, min_per_class=10, preprocess=tiny_spec(), log=logs.append)

    meta = json.loads((result.path / "model.json").read_text())
    snap = meta["metrics"]["retrain"]["data"]
    marked_train = sorted(set(marks) & set(snap["train_ids"]))
    assert marked_train and snap["marked_ids"] == marked_train and snap["n_marked"] == result.n_marked
    # marked positives had their heatmap supervised (training holds a few out for its own validation
    # split, vision.train); no unmarked positive had a mask
    assert 0 < meta["training"]["mask_supervised_positives"] <= len(marked_train)
    assert any("marked scratch items supervise the heatmap" in m for m in logs)
    assert meta["training"]["history"][0]["train_loss"] > 0
