"""Damage in a JPEG's image data that libjpeg cannot report: a constant colour step from one block onward.

A JPEG codes each block's mean (its DC coefficient) as the difference from the previous block's. A few
bytes overwritten in the entropy-coded data often decode without a single libjpeg warning (the Huffman
codes fall back into step within a few blocks), but every block after the damage carries the same DC
error: from the damaged block to the end of the image, brightness or colour is off by a constant. In the
frame it shows as a step along one block-row boundary, running from the damaged column to one side of the
frame, and the rest of that boundary from the other side one block row further down.
`scripts/fuzz_decode.py` found 33 garbled decodes in 1,000 randomly damaged 1080p JPEGs; the domain gate
let 19 through, and one scratched phone scored 0.06 instead of 1.0.

What sets the step apart from a real edge: it lies exactly on the block grid, it is sharp (one pixel
row to the next, where the camera's optics blur a real edge over several), it is constant along the row
(a real edge varies with texture and light), the texture on both sides carries on, and it reaches a side
of the frame. Of 7,200 intact JPEGs (the shared real datasets and the generated sets, decoded at full and
half size) none shows one over a tenth of the width, except 36 of the 200-px NEU steel images with one
32-px segment; of 111 damaged 1080p photos that libjpeg decodes without a warning but garbled, decode_image
refuses 103.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["BLOCK", "DcStep", "dc_step"]

BLOCK = 8  # JPEG block side, px at full size (a chroma MCU row of 16 px is two block rows)
STRIDE = 4  # columns sampled (every 4th: a step constant along the row survives, the cost falls 4x)
SEGMENT = 8  # sampled columns per segment (32 px at full size): steps are compared segment by segment
MIN_STEP = 6.0  # grey levels (Y, Cr or Cb): under that a DC error does not change what the model sees
TOLERANCE = 0.25  # of the step: how much it may vary along a segment, and how far rows inside blocks move
MIN_TEXTURE = 0.5  # grey levels: a flat fill (a drawing, not a photo) has no texture to carry on
# A step over a quarter of the width from a side of the frame is damage: no intact photo of 7,200 shows one
# over a tenth; 103 of 111 silently garbled decodes are refused.
DAMAGE_SHARE = 0.25
DAMAGE_SEGMENTS = 4  # and 128 decoded px or more: one or two segments of a small image can be its texture


@dataclass(frozen=True)
class DcStep:
    """The longest step found: the share of the width it runs along, in segments too, its row (the first
    row below the boundary, in the image's pixels) and the side of the frame it starts from."""

    share: float
    segments: int
    row: int
    side: str  # "left" | "right"

    @property
    def is_damage(self) -> bool:
        return self.share >= DAMAGE_SHARE and self.segments >= DAMAGE_SEGMENTS


_NO_STEP = DcStep(0.0, 0, -1, "left")


def _ycc_rows(image: np.ndarray, rows: np.ndarray, columns: int, segments: int) -> np.ndarray:
    """rows x 3 x segments x SEGMENT float32 YCrCb (JPEG's own colour space) of the sampled columns."""
    sampled = image[rows, : columns * STRIDE : STRIDE]
    ycc = cv2.cvtColor(sampled, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    return ycc.transpose(0, 2, 1).reshape(len(rows), 3, segments, SEGMENT)


def _side_runs(ok: np.ndarray) -> np.ndarray:
    """Per boundary, the number of leading True segments (from the first one on)."""
    return np.asarray(np.cumprod(ok, axis=1).sum(axis=1))


def dc_step(image: np.ndarray, *, block: int = BLOCK) -> DcStep:
    """The longest sharp, constant, textured step along a block-row boundary that starts at a side of
    the frame. `block`: the block side in this image's pixels (8 at full size, 4 at half)."""
    height, width = image.shape[:2]
    segments = width // STRIDE // SEGMENT
    boundaries = np.arange(max(block, 2), height - 1, block)
    if image.ndim != 3 or block < 4 or segments < 4 or len(boundaries) == 0:
        return _NO_STEP
    columns = segments * SEGMENT
    above, below = (_ycc_rows(image, boundaries + k, columns, segments) for k in (-1, 0))
    step = (below - above).mean(axis=3)  # boundaries x 3 x segments
    size = np.abs(step).max(axis=1)  # boundaries x segments: the largest channel's step
    # A run must start at a side of the frame: only those boundaries are looked at further (cheap).
    keep = np.flatnonzero((size[:, 0] >= MIN_STEP) | (size[:, -1] >= MIN_STEP))
    if len(keep) == 0:
        return _NO_STEP
    boundaries, above, below, step, size = boundaries[keep], above[keep], below[keep], step[keep], size[keep]
    above2, below2 = (_ycc_rows(image, boundaries + k, columns, segments) for k in (-2, 1))
    limit = TOLERANCE * size + 1.5  # +1.5 levels: JPEG's own rounding noise
    spread = np.abs(below - above - step[..., None]).mean(axis=3).max(axis=1)
    # how far the rows next to the boundary move on their own, in the step's direction (a blurred edge
    # moves them; noise averages out along the segment)
    inside = np.maximum(np.abs((above - above2).mean(axis=3)), np.abs((below2 - below).mean(axis=3))).max(axis=1)
    texture = np.abs(above - above.mean(axis=3, keepdims=True)).mean(axis=3).max(axis=1)
    ok = (size >= MIN_STEP) & (spread <= limit) & (inside <= limit) & (texture >= MIN_TEXTURE)
    # a segment continues its left neighbour's run only with (nearly) the same step in every channel
    same = np.all(np.abs(step[:, :, 1:] - step[:, :, :-1]) <= 0.3 * size[:, None, :-1] + 1.5, axis=1)
    from_left = _side_runs(np.concatenate([ok[:, :1], ok[:, 1:] & same], axis=1))
    from_right = _side_runs(np.concatenate([ok[:, -1:], (ok[:, :-1] & same)[:, ::-1]], axis=1))
    runs = np.maximum(from_left, from_right)
    i = int(runs.argmax())
    side = "left" if from_left[i] >= from_right[i] else "right"
    return DcStep(float(runs[i]) / segments, int(runs[i]), int(boundaries[i]), side)
