"""vision.reference: the `domain` (with `ood`) and `monitor` blocks of model.json from reference images."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.core.drift import MAX_REFERENCE_SAMPLES
from inspection.core.gate import GateRanges
from inspection.vision.artifact import ModelMeta
from inspection.vision.features import FeaturePCA
from inspection.vision.model import NetConfig, ScratchNet
from inspection.vision.predictor import Predictor
from inspection.vision.preprocess import PreprocessSpec
from inspection.vision.reference import (
    Measured,
    ReferenceRow,
    build_blocks,
    measure,
    measure_files,
)

FRAME = ("brightness", "colour_cast", "contrast", "height", "sharpness", "width")
QUALITY = {"brightness": 36.0, "contrast": 28.0, "sharpness": 30.0, "region_px": 420.0, "completeness": 1.0,
           "blockiness": 1.1}


def _rows(n: int, d: int = 24, seed: int = 0) -> list[ReferenceRow]:
    rng = np.random.default_rng(seed)
    feats = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    return [
        ReferenceRow(
            frame={name: float(rng.uniform(10, 200)) for name in FRAME},
            quality={k: v * float(rng.uniform(0.9, 1.1)) for k, v in QUALITY.items()},
            score=float(rng.uniform()),
            n_regions=int(rng.integers(0, 3)),
            features=feats[i],
        )
        for i in range(n)
    ]


def test_monitor_block_has_the_contract_shape() -> None:
    measured = Measured(_rows(700), unjudgeable=14)
    domain, monitor = build_blocks(measured, source="synthetic rows", unreadable=6)
    json.dumps(monitor)  # plain JSON
    assert monitor["source"] == "synthetic rows" and monitor["n"] == 700
    feats = monitor["features"]
    assert (feats["dim"], feats["k"]) == (24, 8)
    assert len(feats["mean"]) == 24 and len(feats["components"]) == 8 and len(feats["scale"]) == 8
    values = monitor["reference"]["values"]
    expected = {*FRAME, "score", "n_regions", *(f"f{i}" for i in range(8))}
    assert set(values) == expected
    assert all(len(v) == MAX_REFERENCE_SAMPLES for v in values.values())  # 700 subsampled to 500
    assert all(v == round(v, 4) for v in values["score"])
    shares = monitor["reference"]["shares"]
    assert shares == {"unjudgeable": pytest.approx(14 / 720, abs=1e-6), "unreadable": pytest.approx(6 / 720, abs=1e-6)}
    # f0..f7 are the whitened components: ~N(0, 1) on the reference itself
    f0 = np.asarray(values["f0"])
    assert abs(f0.mean()) < 0.15 and 0.85 < f0.std() < 1.15


def test_domain_block_gets_an_ood_limit_from_out_of_fold_scores() -> None:
    domain, monitor = build_blocks(Measured(_rows(300), 0), source="s")
    ranges = GateRanges.from_json(domain)  # every name is a known gate metric
    ood = ranges.ranges["ood"]
    assert ood.lo is None and ood.hi is not None and 1.0 < ood.hi < 10.0
    assert {"brightness", "sharpness", "region_px"} <= set(ranges.ranges)
    pca = FeaturePCA.from_json(monitor["features"])
    assert pca is not None
    assert np.mean(pca.ood(np.stack([r.features for r in _rows(300, seed=0)]))) < ood.hi


def test_gate_ranges_can_come_from_other_images_than_the_ood_limit() -> None:
    qualities = [dict(QUALITY) for _ in range(80)]
    domain, _ = build_blocks(Measured(_rows(60), 0), source="val", qualities=qualities, domain_source="train+val")
    assert domain["source"] == "train+val" and domain["n"] == 80
    assert "ood" in domain["ranges"]


def test_few_images_give_no_ood_range_and_very_few_no_features() -> None:
    domain, monitor = build_blocks(Measured(_rows(30), 0), source="s")
    assert domain == {}  # under MIN_REFERENCE: the gate's floors only
    assert "features" in monitor and "f0" in monitor["reference"]["values"]
    domain, monitor = build_blocks(Measured(_rows(12), 0), source="s", qualities=[dict(QUALITY)] * 60)
    assert "ood" not in domain["ranges"]
    assert "features" not in monitor and "f0" not in monitor["reference"]["values"]
    assert len(monitor["reference"]["values"]["score"]) == 12


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    meta = ModelMeta(version="ref-test", net=NetConfig(), preprocess=PreprocessSpec(mode="resize", canvas_h=64,
                                                                                       canvas_w=32))
    return Predictor(ScratchNet(NetConfig()).eval(), meta, threads=1)


def test_measure_scores_frames_as_ingest_does(predictor: Predictor, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (120, 80, 3), dtype=np.uint8) for _ in range(5)]
    frames[0][..., 2] = 250  # a red cast
    measured = measure(predictor, frames, batch=2)
    assert len(measured.rows) == 5 and measured.unjudgeable == 0
    row = measured.rows[0]
    assert (row.frame["width"], row.frame["height"]) == (80, 120)
    assert row.frame["colour_cast"] > 100 > measured.rows[1].frame["colour_cast"]
    assert 0.0 <= row.score <= 1.0 and row.features.shape == (112,)
    assert "ood" not in row.quality
    for i, f in enumerate(frames[:3]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    measured, unreadable = measure_files(predictor, sorted(tmp_path.iterdir()))
    assert (len(measured.rows), unreadable) == (3, 1)


def test_a_predictor_with_the_built_blocks_reports_features_and_ood(predictor: Predictor) -> None:
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (120, 80, 3), dtype=np.uint8) for _ in range(60)]
    domain, monitor = build_blocks(measure(predictor, frames), source="noise")
    served = Predictor(predictor.net, replace(predictor.meta, domain=domain, monitor=monitor), threads=1)
    [s] = served.score(frames[:1])
    assert len(s.features) == 8 and s.quality["ood"] > 0
    assert served.gate_ranges.ranges["ood"].hi is not None
