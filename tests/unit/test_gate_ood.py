"""The domain gate's `ood` metric: its wording, its range from reference scores, and on the shipped baseline
that an unshifted lab photo passes it while an unfamiliar image is stopped by it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.core.gate import FALSE_STOP_BUDGET, GateRanges, MetricRange, check, ranges_from_samples
from inspection.vision.degrade import NO_PHONE, degrade, no_phone
from inspection.vision.images import decode_image
from inspection.vision.predictor import Predictor, load_predictor
from inspection.vision.synth import render

BASELINE = Path(__file__).resolve().parents[2] / "models" / "baseline"


def test_ood_above_its_limit_is_an_unfamiliar_image_with_score_and_limit() -> None:
    ranges = GateRanges({"ood": MetricRange(None, 2.45, 1.0)})
    [failure] = check({"ood": 7.314}, ranges)
    assert failure.metric == "ood"
    assert failure.reason == "unfamiliar image: OOD score 7.31 (limit 2.45)"
    assert check({"ood": 2.4}, ranges) == ()
    assert check({"ood": 31.0}, GateRanges({"ood": MetricRange(None, 12.5, 1.0)}))[0].reason == (
        "unfamiliar image: OOD score 31 (limit 12)"
    )


def test_ood_has_no_floor_and_is_reported_after_the_other_metrics() -> None:
    assert check({"ood": 1e6}, GateRanges()) == ()  # no reference basis, no opinion
    ranges = GateRanges({"ood": MetricRange(None, 2.0, 1.0), "brightness": MetricRange(20.0, 60.0, 36.0)})
    assert [f.metric for f in check({"ood": 9.0, "brightness": 2.0}, ranges)] == ["brightness", "ood"]


def test_ood_range_is_one_sided_and_round_trips() -> None:
    scores = np.random.default_rng(0).chisquare(8, 500) / 8
    ranges = ranges_from_samples({"ood": scores}, source="s", margin=0.15)
    rng = ranges.ranges["ood"]
    assert rng.lo is None and rng.hi == pytest.approx(np.quantile(scores, 1 - FALSE_STOP_BUDGET) * 1.15)
    assert GateRanges.from_json(ranges.to_json()) == ranges


@pytest.fixture(scope="module")
def baseline() -> Predictor:
    return load_predictor(BASELINE, threads=2)


def _jpeg_frame(image: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return decode_image(buf.tobytes())


def test_the_baseline_carries_an_ood_limit_and_a_features_basis(baseline: Predictor) -> None:
    assert baseline.pca is not None and baseline.pca.k == 8
    limit = baseline.gate_ranges.ranges["ood"].hi
    assert limit is not None and 1.0 < limit < 10.0


def test_unshifted_lab_photos_pass_the_ood_check_on_the_baseline(baseline: Predictor) -> None:
    frames = [_jpeg_frame(render(777, i, scratch=i % 2 == 0).image) for i in range(6)]
    for s in baseline.score(frames):
        assert len(s.features) == 8 and s.quality["ood"] < 3.0
        assert not [f for f in s.gate if f.metric == "ood"]


# Far off the baseline's training domain (lab and varied setups, which already span blur, exposure and
# scale: those are the quality metrics' to stop): JPEG blocks at quality 4, a circuit board, no phone.
@pytest.mark.parametrize(("kind", "strength"), [("heavy_jpeg", 2), ("heavy_jpeg", 3), ("circuit_board", 1),
                                                ("circuit_board", 2)])
def test_far_off_images_are_stopped_by_the_ood_check_too(baseline: Predictor, kind: str, strength: int) -> None:
    if kind in NO_PHONE:
        data = no_phone(kind, strength, seed=4300).data
    else:
        sample = render(4300, 1, scratch=True)
        data = degrade(sample.image, kind, strength, phone_box=sample.phone_box).data
    frame = decode_image(data)
    [s] = baseline.score([frame])
    limit = baseline.gate_ranges.ranges["ood"].hi
    assert limit is not None and s.quality["ood"] > limit
    [ood] = [f for f in s.gate if f.metric == "ood"]
    assert ood.reason.startswith("unfamiliar image: OOD score ") and ood.reason.endswith(f"(limit {limit:.2f})")
