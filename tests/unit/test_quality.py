"""Gate metrics (vision.quality) on generated images: each moves the way its name says."""

from __future__ import annotations

import numpy as np
import pytest

from inspection.vision.degrade import jpeg
from inspection.vision.images import decode_image
from inspection.vision.preprocess import PreprocessSpec, locate_phone, warp
from inspection.vision.quality import blockiness, completeness, domain_block, region_quality
from inspection.vision.synth import render


@pytest.fixture(scope="module")
def phone() -> np.ndarray:
    return render(5, 0, scratch=True, size=(960, 540)).image


def test_completeness_counts_flat_rows(phone: np.ndarray) -> None:
    assert completeness(phone) == 1.0
    cut = phone.copy()
    cut[270:] = 128  # what a decoder fills in after the data ran out
    assert completeness(cut) == pytest.approx(0.5)


def test_blockiness_rises_with_jpeg_compression(phone: np.ndarray) -> None:
    assert blockiness(decode_image(jpeg(phone, 95))) < 1.5
    assert blockiness(decode_image(jpeg(phone, 4))) > 2.5


def test_localisation_confidence_is_high_for_a_whole_phone_and_falls_when_cut(phone: np.ndarray) -> None:
    whole = locate_phone(phone)
    assert whole.confidence > 0.9 and whole.cut == 0.0 and 1.8 < whole.aspect < 2.6
    x, _, w, _ = render(5, 0, scratch=True, size=(960, 540)).phone_box
    cut = locate_phone(np.ascontiguousarray(phone[:, x + w // 4 :]))
    assert cut.cut > 0.5 and cut.confidence < 0.5


def test_region_quality_reports_original_pixels_and_every_gate_metric(phone: np.ndarray) -> None:
    warped = warp(phone[::2, ::2].copy(), PreprocessSpec(), scale=2.0)  # searched at half size
    q = region_quality(phone, warped)
    assert set(q) == {"brightness", "contrast", "sharpness", "completeness", "blockiness", "region_px",
                      "localisation", "aspect"}
    assert q["region_px"] == pytest.approx(locate_phone(phone).size[0], rel=0.05)
    block = domain_block([q, q], source="two")
    assert block["n"] == 2 and block["ranges"]["region_px"]["reference"] == pytest.approx(q["region_px"])
