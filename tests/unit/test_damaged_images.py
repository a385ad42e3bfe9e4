"""Files damaged at random (bytes overwritten, inserted, deleted, cut, size fields smashed) in every
accepted format: each either decodes to a well-formed image or is refused with a reason a person can
read. Nothing else may escape decode_image: an unexpected exception would fail the request instead of
sending the item to a person. (Rates of damage that no decoder can see: scripts/fuzz_decode.py.)"""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from inspection.vision.images import ImageError, decode_image
from tests.bad_images import encodings, mutate

CASES_PER_FORMAT = 120
REASONS = ("corrupt ", "truncated ", "not an image", "image too large", "image too small")


def _photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (9, 9), 3)


@pytest.mark.parametrize("name", list(encodings(_photo())))
def test_a_damaged_file_decodes_to_a_well_formed_image_or_is_refused_with_a_reason(name: str) -> None:
    rng = random.Random(name)  # str seeds are stable across runs (unlike hash())
    data = encodings(_photo())[name]
    refused = 0
    for _ in range(CASES_PER_FORMAT):
        damaged, kinds = mutate(data, rng)
        try:
            image = decode_image(damaged, min_side=8, reduce=rng.choice((1, 2)))
        except ImageError as exc:
            refused += 1
            reason = str(exc)
            assert reason.startswith(REASONS) and "object at 0x" not in reason, (kinds, reason)
            continue
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, kinds
        assert image.flags.c_contiguous and min(image.shape[:2]) >= 4, kinds
    assert refused > CASES_PER_FORMAT // 4  # the damage is real: most files must not survive it


def test_a_tiff_pillow_cannot_identify_is_refused_without_naming_a_python_object() -> None:
    data = encodings(_photo())["tiff"]
    ifd = int.from_bytes(data[4:8], "little")  # OpenCV writes the first directory after the strips
    damaged = data[: ifd + 26] + b"\x00" * 3 + data[ifd + 26 :]  # its entries shifted out of step
    with pytest.raises(ImageError) as exc:
        decode_image(damaged)
    assert str(exc.value).startswith("corrupt TIFF") and "object at" not in str(exc.value)
