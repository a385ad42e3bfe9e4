"""Gate metrics (vision.quality) on generated images: each moves the way its name says."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from inspection.vision.degrade import jpeg
from inspection.vision.images import decode_image
from inspection.vision.preprocess import PreprocessSpec, locate_phone, warp
from inspection.vision.quality import blockiness, completeness, domain_block, edge_blur, region_quality
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
    assert set(q) == {"brightness", "contrast", "sharpness", "edge_blur", "completeness", "blockiness",
                      "region_px", "localisation", "aspect"}
    assert q["region_px"] == pytest.approx(locate_phone(phone).size[0], rel=0.05)
    block = domain_block([q, q], source="two")
    assert block["n"] == 2 and block["ranges"]["region_px"]["reference"] == pytest.approx(q["region_px"])


def _shown_at(sigma: float, magnification: float, *, contrast: float = 120.0,
              shake: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A dark phone-sized rectangle on a grey table, blurred by `sigma` camera px (and a horizontal camera
    shake of `shake` px), then put on a canvas at `magnification` (canvas px per camera px) as the warp
    does: (grey canvas, camera -> canvas affine)."""
    camera = np.full((400, 400), 150.0, np.float32)
    camera[100:300, 120:280] = 150.0 - contrast
    camera = cv2.GaussianBlur(camera, (0, 0), sigma)
    if shake:
        kernel = np.zeros((shake, shake), np.float32)
        kernel[shake // 2, :] = 1.0 / shake
        camera = cv2.filter2D(camera, -1, kernel)
    shrink = cv2.INTER_AREA if magnification < 1 else cv2.INTER_LINEAR
    canvas = cv2.resize(camera, None, fx=magnification, fy=magnification, interpolation=shrink)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), np.array([[magnification, 0, 0], [0, magnification, 0]])


@pytest.mark.parametrize("sigma", [4.0, 8.0, 12.0])
@pytest.mark.parametrize("magnification", [0.5, 1.0, 2.0])
def test_edge_blur_reads_the_camera_s_blur_whatever_the_canvas_magnification(
    sigma: float, magnification: float
) -> None:
    assert edge_blur(*_shown_at(sigma, magnification)) == pytest.approx(sigma, rel=0.15)


@pytest.mark.parametrize("shake", [21, 41])
@pytest.mark.parametrize("magnification", [0.5, 1.0])
def test_edge_blur_widens_across_a_camera_shake(shake: int, magnification: float) -> None:
    """A box blur of L px lets a step rise at 1/L per px: as steep as a Gaussian of sigma L / sqrt(2 pi)."""
    assert edge_blur(*_shown_at(1.0, magnification, shake=shake)) == pytest.approx(shake * 0.4, rel=0.1)


def test_edge_blur_does_not_depend_on_how_dark_the_phone_is() -> None:
    assert edge_blur(*_shown_at(8.0, 1.0, contrast=40.0)) == pytest.approx(edge_blur(*_shown_at(8.0, 1.0)), rel=0.05)


def test_a_flat_canvas_has_no_edge_to_measure() -> None:
    assert edge_blur(np.full((512, 240), 90, np.uint8), np.eye(2, 3)) == math.inf


def test_edge_blur_of_a_lab_phone_grows_with_the_camera_s_blur(phone: np.ndarray) -> None:
    """The degraded corpus's Gaussian blur (sigma 3, 6, 12 px at 1920x1080; here 960x540, so 1.5, 3, 6)."""
    spec = PreprocessSpec()
    widths = []
    for sigma in (0.0, 1.5, 3.0, 6.0):
        image = cv2.GaussianBlur(phone, (0, 0), sigma) if sigma else phone
        widths.append(region_quality(image, warp(image, spec))["edge_blur"])
    assert widths == sorted(widths)
    assert widths[-1] > 5.5 and widths[0] < 2.5
