"""The learned localiser: a tiny U-Net that predicts the glass (and phone) mask of a frame at low
resolution, served through ONNX Runtime from `models/localiser/` (trained by scripts/train_localiser.py
on generated `varied` and `closeup` scenes with wide domain randomisation; no download, no pickle).

Why a network next to the geometry (`localise`): the geometry cues need some contrast between the
phone, its bezel and the table. A white bezel on a light table, a black phone on a near-black table,
a small strongly blurred phone or a close-up leave no usable threshold, but the phone's shape and the
display inside it still show; a network trained on the generator's own masks learns that context.
Its mask is coarse (1/4 of a 192x112 input), so the rectangle fitted to it is snapped onto the
phone's outline on the full frame afterwards (`localise.snap`), like the geometry's.

The frame is resized to the input size whatever its aspect; the mask is resized back to the searched
copy's size, so no aspect is assumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.vision.onnx_session import cpu_session

__all__ = ["MODEL_DIR", "Segmenter", "load_segmenter", "net_input"]

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "localiser"
ONNX_NAME, META_NAME = "localiser.onnx", "localiser.json"
INPUT_W, INPUT_H = 192, 112  # the network's input (landscape; portrait frames are squeezed into it)
MEAN, STD = 0.5, 0.25


def net_input(image: np.ndarray, size: tuple[int, int] = (INPUT_W, INPUT_H)) -> np.ndarray:
    """A BGR uint8 frame (any size) -> 1 x 3 x H x W float32, the network's input (training uses it too)."""
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    x = (small.astype(np.float32) * np.float32(1.0 / 255.0) - np.float32(MEAN)) * np.float32(1.0 / STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


@dataclass(frozen=True)
class Segmenter:
    """The loaded network: `glass(image, shape)` is the glass probability map at `shape` (h, w)."""

    session: Any  # onnxruntime.InferenceSession
    size: tuple[int, int]  # input (w, h)
    meta: dict[str, Any]

    def glass(self, image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        logits = self.session.run(["masks"], {"x": net_input(image, self.size)})[0][0, 0]
        prob = 1.0 / (1.0 + np.exp(-logits))
        return cv2.resize(prob.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=4)
def load_segmenter(directory: Path = MODEL_DIR) -> Segmenter | None:
    """The shipped localiser network, or None when it is not there (the geometry then works alone).
    One ONNX Runtime thread: localisation runs per image next to the scoring network's threads."""
    path, meta_path = directory / ONNX_NAME, directory / META_NAME
    if not path.is_file() or not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    session = cpu_session(str(path), threads=1)  # onnxruntime is loaded on the first non-lab frame only
    w, h = meta.get("input", [INPUT_W, INPUT_H])
    return Segmenter(session=session, size=(int(w), int(h)), meta=meta)
