"""A JPEG whose image data was damaged in a way libjpeg decodes without a warning (every block after the
damage off by a constant) is refused as corrupt; photos with real edges, drawings and steps off the block
grid are not."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import simplejpeg

from inspection.vision.formats import probe
from inspection.vision.images import ImageError, decode_image
from inspection.vision.jpeg_damage import dc_step
from inspection.vision.synth import render


def _jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _photo(seed: int = 0, setup: str = "lab") -> np.ndarray:
    return render(seed, 0, scratch=True, size=(640, 352), setup=setup).image


def _dc_error(image: np.ndarray, *, row: int, column: int, offset: float) -> np.ndarray:
    """What a DC error does: from block (row, column) on, in JPEG's block order, luma off by `offset`."""
    ycc = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    ycc[row : row + 16, column:, 0] += offset  # the rest of the damaged MCU row (16 px high at 4:2:0)
    ycc[row + 16 :, :, 0] += offset  # and every MCU row after it
    return cv2.cvtColor(np.clip(ycc, 0, 255).astype(np.uint8), cv2.COLOR_YCrCb2BGR)


@pytest.mark.parametrize("reduce", [1, 2])
@pytest.mark.parametrize(("row", "column", "offset"), [(96, 320, 12.0), (160, 64, -9.0), (32, 576, 20.0)])
def test_a_constant_step_from_a_block_onward_is_refused_as_damaged(row: int, column: int, offset: float,
                                                                   reduce: int) -> None:  # fmt: skip
    data = _jpeg(_dc_error(_photo(), row=row, column=column, offset=offset))
    simplejpeg.decode_jpeg(data, strict=True)  # libjpeg itself sees nothing wrong
    with pytest.raises(ImageError, match=r"corrupt JPEG \(damaged image data: .* along row (\d+)") as exc:
        decode_image(data, reduce=reduce)
    assert str(row) in str(exc.value) or str(row + 16) in str(exc.value)


def test_bytes_damaged_so_that_libjpeg_decodes_without_a_warning_are_mostly_caught() -> None:
    """Real damage, found by search: single bytes changed in the image data of a 1080p phone photo until
    10 files decode silently with over 1 % of the pixels visibly off; the step check refuses most."""
    image = render(3, 0, scratch=True, size=(1920, 1080)).image
    data = _jpeg(image, 90)
    intact = simplejpeg.decode_jpeg(data, colorspace="BGR").astype(np.int16)
    start = probe(data).scan_offset
    rng = random.Random(0)
    garbled = caught = 0
    for _ in range(3000):
        damaged = bytearray(data)
        damaged[rng.randrange(start + 64, len(data) - 64)] = rng.randrange(256)
        try:
            pixels = simplejpeg.decode_jpeg(bytes(damaged), colorspace="BGR", strict=True)
        except ValueError:
            continue  # libjpeg's own warning: refused anyway
        if (np.abs(pixels.astype(np.int16) - intact).mean(axis=2) > 20).mean() <= 0.01:
            continue  # harmless damage (a few blocks)
        garbled += 1
        caught += _refused(bytes(damaged))
        if garbled == 10:
            break
    assert garbled == 10
    assert caught >= 7


def _refused(data: bytes) -> bool:
    try:
        decode_image(data)
    except ImageError:
        return True
    return False


@pytest.mark.parametrize("setup", ["lab", "varied"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intact_phone_photos_show_no_step(seed: int, setup: str) -> None:
    photo = decode_image(_jpeg(_photo(seed, setup), 90))
    assert dc_step(photo).share < 0.1


def test_a_sharp_textured_step_off_the_block_grid_is_an_edge() -> None:
    stepped = _dc_error(_photo(), row=96, column=0, offset=15.0)
    moved = np.ascontiguousarray(np.roll(stepped, 3, axis=0))  # the step now at row 99: not on the grid
    decode_image(_jpeg(moved))


def test_a_real_edge_across_the_frame_is_not_damage() -> None:
    """A table edge through the whole frame on the block grid: the optics blur it over a few pixels."""
    photo = _photo().astype(np.float32)
    photo[160:] *= 0.6
    edge = cv2.GaussianBlur(photo, (0, 0), 1.5)
    decode_image(_jpeg(np.clip(edge, 0, 255).astype(np.uint8)))


def test_a_flat_two_tone_drawing_is_not_damage() -> None:
    """No texture on either side: a drawing, not a photo whose blocks all moved."""
    drawing = np.full((352, 640, 3), 40, np.uint8)
    drawing[160:] = 200
    decode_image(_jpeg(drawing))
