"""Load a model artifact and score images in batches. Implements the `Scorer` protocol.

One bad image never spoils a batch: it gets a Prediction with `error` set (and so goes to a person),
the rest are scored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inspection.artifact import ModelMeta, load_artifact
from inspection.domain import Prediction
from inspection.images import ImageError, decode_image, image_size
from inspection.model import ScratchNet
from inspection.preprocess import (
    PreprocessError,
    Warped,
    heatmap_to_frame,
    regions_from_heatmap,
    to_tensor_array,
    warp,
)
from inspection.scoring import Scored

BATCH = 16  # images per forward pass: bigger batches gain little on 2 cores and cost memory


@dataclass(frozen=True)
class Prepared:
    warped: Warped | None
    frame_wh: tuple[int, int]  # original width, height
    error: str | None = None


class Predictor:
    def __init__(self, net: ScratchNet, meta: ModelMeta, *, threads: int = 2) -> None:
        torch.set_num_threads(max(1, threads))
        self.net = net.eval()
        self.meta = meta
        self.version = meta.version

    # -- preparing inputs -------------------------------------------------------------------------
    def prepare_image(self, image: np.ndarray, *, scale: float = 1.0) -> Prepared:
        h, w = image.shape[:2]
        frame = (round(w * scale), round(h * scale))
        try:
            return Prepared(warp(image, self.meta.preprocess, scale=scale), frame)
        except PreprocessError as exc:
            return Prepared(None, frame, str(exc))

    def prepare_bytes(self, data: bytes, *, max_pixels: int = 50_000_000) -> Prepared:
        try:
            w, h = image_size(data)
            reduce = self.meta.preprocess.decode_reduce(w, h)
            image = decode_image(data, max_pixels=max_pixels, reduce=reduce)
        except ImageError as exc:
            return Prepared(None, (0, 0), str(exc))
        # the decoder may round odd sizes: measure the real factor
        return self.prepare_image(image, scale=w / image.shape[1])

    def prepare_file(self, path: Path, *, max_pixels: int = 50_000_000) -> Prepared:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Prepared(None, (0, 0), f"cannot read file: {exc.strerror or exc}")
        return self.prepare_bytes(data, max_pixels=max_pixels)

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, images: Sequence[np.ndarray]) -> list[Scored]:
        return self.score_prepared([self.prepare_image(im) for im in images])

    def score_files(self, paths: Iterable[Path]) -> list[Scored]:
        return self.score_prepared([self.prepare_file(p) for p in paths])

    def score_prepared(self, items: Sequence[Prepared]) -> list[Scored]:
        out: list[Scored | None] = [None] * len(items)
        good = [i for i, it in enumerate(items) if it.warped is not None]
        for i, it in enumerate(items):
            if it.warped is None:
                out[i] = Scored(Prediction(self.version, None, error=it.error or "not scorable"), None)
        for start in range(0, len(good), BATCH):
            chunk = good[start : start + BATCH]
            try:
                scored = self._forward([items[i] for i in chunk])
            except (RuntimeError, ValueError) as exc:  # a model failure sends items to people
                scored = [Scored(Prediction(self.version, None, error=f"model error: {exc}"), None)] * len(chunk)
            for i, s in zip(chunk, scored, strict=True):
                out[i] = s
        return [s for s in out if s is not None]

    def _forward(self, items: Sequence[Prepared]) -> list[Scored]:
        t0 = time.perf_counter()
        canvases = [it.warped.canvas for it in items if it.warped is not None]
        x = torch.from_numpy(to_tensor_array(canvases))
        with torch.inference_mode():
            image_logit, cells = self.net(x)
        probs = torch.sigmoid(image_logit / self.meta.temperature).numpy()
        cell_probs = torch.sigmoid(cells).numpy()
        per_item_ms = (time.perf_counter() - t0) * 1000 / len(items)
        spec = self.meta.preprocess
        results = []
        for it, p, c in zip(items, probs, cell_probs, strict=True):
            assert it.warped is not None
            heat = heatmap_to_frame(c, it.warped.to_canvas, it.frame_wh, canvas_hw=(spec.canvas_h, spec.canvas_w))
            regions = regions_from_heatmap(heat, it.frame_wh)
            pred = Prediction(self.version, float(p), regions, latency_ms=round(per_item_ms, 2))
            results.append(Scored(pred, heat))
        return results


def load_predictor(model_dir: Path, *, threads: int = 2) -> Predictor:
    net, meta = load_artifact(model_dir)
    return Predictor(net, meta, threads=threads)
