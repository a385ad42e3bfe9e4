"""Load a model artifact and score images in batches. Implements the `Scorer` protocol.

One bad image never spoils a batch: it gets a Prediction with `error` set (and so goes to a person),
the rest are scored.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from inspection.core.domain import Localisation, Prediction
from inspection.core.gate import GateRanges, check
from inspection.core.scoring import Scored
from inspection.vision.artifact import ONNX, ModelMeta, load_artifact
from inspection.vision.features import FeaturePCA
from inspection.vision.images import ImageError, decode_image, image_size
from inspection.vision.model import ScoringNet, ScratchNet
from inspection.vision.onnx_session import cpu_session
from inspection.vision.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PreprocessError,
    Warped,
    heatmap_to_frame,
    regions_from_heatmap,
    warp,
)
from inspection.vision.quality import blockiness, region_quality

BATCH = 16  # images per forward pass: bigger batches gain little on 2 cores and cost memory
# score_stream's images per forward pass: on 2 cores the baseline runs fastest one image at a time
# (measured 65 images/s at 1, 50 at 4, 41 at 16: a single image's activations stay in cache).
STREAM_BATCH = 1


@dataclass(frozen=True)
class Prepared:
    warped: Warped | None
    frame_wh: tuple[int, int]  # original width, height
    error: str | None = None
    quality: dict[str, float] = field(default_factory=dict)  # vision.quality metrics of the region


# batch -> (image logits N, cell logits N x h x w, pooled features N x D or None for an old ONNX file)
Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray | None]]


def torch_forward(net: ScratchNet, *, threads: int) -> Forward:
    torch.set_num_threads(max(1, threads))
    net.eval()
    scoring = ScoringNet(net).eval()

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            logit, cells, feats = scoring(torch.from_numpy(batch))
        return logit.numpy(), cells.numpy(), feats.numpy()

    return run


def onnx_forward(path: Path, *, threads: int, spinning: bool = False) -> Forward:
    # Idle intra-op threads sleep instead of spinning: on a small machine decoding, hashing and the
    # database run beside the model, and a spinning pool would take their core (measured: README).
    session = cpu_session(str(path), threads=threads, spinning=spinning)
    # artifacts exported before the features output existed still score (without features)
    names = [o.name for o in session.get_outputs() if o.name in ("logit", "cells", "features")]

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        out = dict(zip(names, session.run(names, {"x": batch}), strict=True))
        feats = out.get("features")
        return np.asarray(out["logit"]), np.asarray(out["cells"]), None if feats is None else np.asarray(feats)

    return run


class Predictor:
    def __init__(self, net: ScratchNet, meta: ModelMeta, *, threads: int = 2, forward: Forward | None = None,
                 backend: str = "torch") -> None:
        self.net = net
        self.meta = meta
        self.version = meta.version
        self.backend = backend
        self.forward = forward or torch_forward(net, threads=threads)
        # the artifact's accepted ranges; an artifact without a domain block gets the floors only
        self.gate_ranges = GateRanges.from_json(meta.domain)
        # the reference features' basis: projects features and gives the `ood` gate metric (None: neither)
        self.pca = FeaturePCA.from_json(meta.monitor.get("features"))

    # -- preparing inputs -------------------------------------------------------------------------
    def prepare_image(self, image: np.ndarray, *, scale: float = 1.0,
                      localisation: Localisation | None = None) -> Prepared:
        h, w = image.shape[:2]
        frame = (round(w * scale), round(h * scale))
        reduce = self.meta.preprocess.decode_reduce(w, h)
        if reduce > 1:
            # Same input as the DCT-reduced decode of prepare_bytes: area-average first, because the
            # warp interpolates bilinearly and would alias 1-px scratches away when shrinking.
            image = cv2.resize(image, (w // reduce, h // reduce), interpolation=cv2.INTER_AREA)
            scale *= w / image.shape[1]
        # Blockiness on these pixels, as prepare_bytes (and so training's reference) measures it: the area
        # average gives the DCT-reduced decode's value (within 0.5 %); at full resolution it reads 1.5x higher
        # and the gate's limit, measured on reduced decodes, would not fit. Before the warp: it smears the grid.
        blocks = blockiness(image)
        try:
            warped = warp(image, self.meta.preprocess, scale=scale, localisation=localisation)
        except PreprocessError as exc:
            return Prepared(None, frame, str(exc))
        return Prepared(warped, frame, quality=region_quality(image, warped, blocks=blocks))

    def prepare_bytes(self, data: bytes, *, max_pixels: int = 50_000_000,
                      localisation: Localisation | None = None) -> Prepared:
        try:
            w, h = image_size(data)
            reduce = self.meta.preprocess.decode_reduce(w, h)
            image = decode_image(data, max_pixels=max_pixels, reduce=reduce)
        except ImageError as exc:
            return Prepared(None, (0, 0), str(exc))
        # the decoder may round odd sizes: measure the real factor
        return self.prepare_image(image, scale=w / image.shape[1], localisation=localisation)

    def prepare_file(self, path: Path, *, max_pixels: int = 50_000_000,
                     localisation: Localisation | None = None) -> Prepared:
        try:
            data = path.read_bytes()
        except OSError as exc:
            return Prepared(None, (0, 0), f"cannot read file: {exc.strerror or exc}")
        return self.prepare_bytes(data, max_pixels=max_pixels, localisation=localisation)

    # -- scoring ----------------------------------------------------------------------------------
    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        return self.score_prepared([self.prepare_image(im, localisation=localisation) for im in images])

    def score_files(self, paths: Iterable[Path], *, localisation: Localisation | None = None) -> list[Scored]:
        return self.score_prepared([self.prepare_file(p, localisation=localisation) for p in paths])

    def score_stream(self, blobs: Iterable[bytes], *, max_pixels: int = 50_000_000, batch: int = STREAM_BATCH,
                     workers: int = 1, localisation: Localisation | None = None) -> Iterator[Scored]:
        """Score encoded images in order, decoding and preparing the next ones in `workers` threads while
        the model runs on the current batch (libjpeg-turbo, OpenCV and ONNX Runtime release the GIL, so
        the two overlap). Look-ahead is bounded (2 batches, at least 4 images): memory stays flat however
        long the stream."""
        source = iter(blobs)
        pending: deque[Future[Prepared]] = deque()
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="prepare") as pool:

            def fill() -> None:
                while len(pending) < max(2 * batch, 4):
                    data = next(source, None)
                    if data is None:
                        return
                    pending.append(pool.submit(self.prepare_bytes, data, max_pixels=max_pixels,
                                               localisation=localisation))

            fill()
            while pending:
                chunk = [pending.popleft().result() for _ in range(min(batch, len(pending)))]
                fill()
                yield from self.score_prepared(chunk)

    def score_prepared(self, items: Sequence[Prepared]) -> list[Scored]:
        return [s for s, _ in self.score_prepared_raw(items)]

    def score_prepared_raw(self, items: Sequence[Prepared]) -> list[tuple[Scored, np.ndarray | None]]:
        """score_prepared plus each item's raw pooled features (D floats; None when not scored or the
        model gives none): what a reference's PCA basis is fitted on (vision.reference)."""
        out: list[tuple[Scored, np.ndarray | None] | None] = [None] * len(items)
        good = [i for i, it in enumerate(items) if it.warped is not None]
        for i, it in enumerate(items):
            if it.warped is None:
                out[i] = (Scored(Prediction(self.version, None, error=it.error or "not scorable"), None), None)
        for start in range(0, len(good), BATCH):
            chunk = good[start : start + BATCH]
            try:
                scored = self._forward([items[i] for i in chunk])
            except (RuntimeError, ValueError) as exc:  # a model failure sends items to people
                failed = Scored(Prediction(self.version, None, error=f"model error: {exc}"), None)
                scored = [(failed, None)] * len(chunk)
            for i, s in zip(chunk, scored, strict=True):
                out[i] = s
        return [s for s in out if s is not None]

    def _forward(self, items: Sequence[Prepared]) -> list[tuple[Scored, np.ndarray | None]]:
        t0 = time.perf_counter()
        canvases = [it.warped.canvas for it in items if it.warped is not None]
        image_logit, cells, feats = self.forward(tensor_batch(canvases))
        probs = sigmoid(image_logit.astype(np.float64) / self.meta.temperature)
        cell_probs = sigmoid(cells)
        projected, ood = self._project(feats, len(items))
        per_item_ms = (time.perf_counter() - t0) * 1000 / len(items)
        spec = self.meta.preprocess
        results = []
        for j, (it, p, c) in enumerate(zip(items, probs, cell_probs, strict=True)):
            assert it.warped is not None
            heat = heatmap_to_frame(c, it.warped.to_canvas, it.frame_wh, canvas_hw=(spec.canvas_h, spec.canvas_w))
            regions = regions_from_heatmap(heat, it.frame_wh)
            pred = Prediction(self.version, float(p), regions, latency_ms=round(per_item_ms, 2))
            quality = it.quality if ood is None else {**it.quality, "ood": float(ood[j])}
            z = () if projected is None else tuple(round(float(v), 4) for v in projected[j])
            scored = Scored(pred, heat, gate=check(quality, self.gate_ranges), quality=quality, features=z)
            results.append((scored, None if feats is None else feats[j]))
        return results

    def _project(self, feats: np.ndarray | None, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(whitened components N x k, OOD scores N), or (None, None) without features or a basis."""
        if feats is None or self.pca is None:
            return None, None
        if feats.shape != (n, self.pca.dim):
            raise ValueError(f"features of shape {feats.shape} do not fit the reference basis (dim {self.pca.dim})")
        return self.pca.project(feats), self.pca.ood(feats)


_MEAN = np.array(IMAGENET_MEAN, np.float32)[None, :, None, None]
_STD = np.array(IMAGENET_STD, np.float32)[None, :, None, None]


def tensor_batch(canvases: Sequence[np.ndarray]) -> np.ndarray:
    """N x 3 x H x W float32, RGB, ImageNet-normalised: preprocess.to_tensor_array bit for bit (the same
    float32 operations in the same order), written in place into one array instead of five temporaries
    (~3x faster; it ran at ~10 % of the forward pass's time)."""
    h, w = canvases[0].shape[:2]
    out = np.empty((len(canvases), 3, h, w), np.float32)
    for i, canvas in enumerate(canvases):
        for c in range(3):
            out[i, c] = canvas[:, :, 2 - c]  # BGR -> RGB planes; uint8 -> float32 is exact
    out /= np.float32(255.0)
    out -= _MEAN
    out /= _STD
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def load_predictor(model_dir: Path, *, threads: int = 2, backend: str = "auto", spinning: bool = False) -> Predictor:
    """backend: "onnx" (ONNX Runtime, the fast path), "torch", or "auto" (onnx when the artifact has it).
    spinning: ONNX Runtime's idle threads busy-wait (faster alone, slower beside other work)."""
    net, meta = load_artifact(model_dir)
    onnx_path = model_dir / ONNX
    if backend == "onnx" or (backend == "auto" and onnx_path.is_file()):
        forward = onnx_forward(onnx_path, threads=threads, spinning=spinning)
        return Predictor(net, meta, forward=forward, backend="onnx")
    return Predictor(net, meta, threads=threads)
