"""Phone finding, warping onto the canvas and mapping heatmaps back: on generated images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inspection.vision.preprocess import (
    PreprocessError,
    PreprocessSpec,
    heatmap_to_frame,
    overlay,
    peak_point,
    regions_from_heatmap,
    warp,
)
from inspection.vision.synth import render


@pytest.mark.parametrize("index", range(6))
def test_warp_puts_the_scratch_mask_onto_the_canvas(index: int) -> None:
    sample = render(3, index, scratch=True, size=(960, 540))
    warped = warp(sample.image, PreprocessSpec())
    mask = cv2.warpAffine(sample.mask, warped.to_canvas, (240, 512), flags=cv2.INTER_AREA)
    assert warped.canvas.shape == (512, 240, 3)
    # the phone fills the canvas: the scratch pixels survive the warp (scale ~1.1 at 960x540)
    assert (mask > 40).sum() >= 0.5 * (sample.mask > 0).sum()


def test_phone_box_found_where_the_generator_put_it() -> None:
    sample = render(4, 0, scratch=False, size=(960, 540))
    warped = warp(sample.image, PreprocessSpec())
    x, y, w, h = sample.phone_box
    centre = warped.to_canvas @ np.array([x + w / 2, y + h / 2, 1.0])
    assert abs(centre[0] - 120) < 12 and abs(centre[1] - 256) < 20


@pytest.mark.parametrize(
    "image",
    [np.full((540, 960, 3), 128, np.uint8), np.zeros((540, 960, 3), np.uint8)],
    ids=["blank grey frame", "all black frame"],
)
def test_frame_without_a_phone_cannot_be_judged(image: np.ndarray) -> None:
    with pytest.raises(PreprocessError, match="no phone"):
        warp(image, PreprocessSpec())


def test_resize_mode_needs_no_phone() -> None:
    warped = warp(np.full((200, 200, 3), 90, np.uint8), PreprocessSpec(mode="resize", canvas_h=224, canvas_w=224))
    assert warped.canvas.shape == (224, 224, 3)


@pytest.mark.parametrize(("w", "h", "mode", "expected"), [
    (1920, 1080, "phone", 2), (960, 540, "phone", 1), (200, 200, "resize", 1), (3840, 2160, "phone", 4),
])
def test_decode_reduce_keeps_enough_pixels_for_the_canvas(w: int, h: int, mode: str, expected: int) -> None:
    assert PreprocessSpec(mode=mode).decode_reduce(w, h) == expected


def test_hot_cell_maps_back_to_its_place_in_the_frame() -> None:
    sample = render(5, 1, scratch=False, size=(960, 540))
    warped = warp(sample.image, PreprocessSpec())
    cells = np.zeros((32, 15), np.float32)
    cells[8, 10] = 1.0  # canvas pixel ~ (168, 136)
    heat = heatmap_to_frame(cells, warped.to_canvas, (960, 540), canvas_hw=(512, 240))
    px, py = peak_point(heat, (960, 540))
    back = warped.to_canvas @ np.array([px, py, 1.0])
    assert abs(back[0] - 168) < 20 and abs(back[1] - 136) < 20
    regions = regions_from_heatmap(heat, (960, 540), threshold=0.3)
    assert len(regions) == 1 and regions[0].x <= px <= regions[0].x + regions[0].w
    assert overlay(sample.image, heat, regions).shape == sample.image.shape
