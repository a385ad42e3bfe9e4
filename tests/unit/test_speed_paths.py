"""Issue 13 speed work: the fast paths give the same numbers as the plain ones, and the micro-batcher
batches concurrent items, fails them together and skips abandoned ones. Training's feature cache through
ONNX Runtime gives eager torch's features."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.services.batcher import MicroBatcher
from inspection.vision import quality
from inspection.vision.model import NetConfig, ScratchNet, load_imagenet_backbone
from inspection.vision.predictor import load_predictor, tensor_batch
from inspection.vision.preprocess import PreprocessSpec, to_tensor_array
from inspection.vision.synth import render
from inspection.vision.train import FROZEN_BLOCKS, frozen_part, onnx_frozen_part

BASELINE = Path(__file__).parents[2] / "models" / "baseline"


def _numpy_blockiness(image: np.ndarray) -> float:
    """The reference definition (what quality.blockiness computed before it moved to OpenCV)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.int16)
    if min(grey.shape) < 16:
        return 1.0
    dx = np.abs(np.diff(grey, axis=1)).mean(axis=0)
    dy = np.abs(np.diff(grey, axis=0)).mean(axis=1)
    return max((quality._period_ratio(dx, p) + quality._period_ratio(dy, p)) / 2 for p in (8, 4))


def _jpeg_frame(quality_level: int, seed: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", render(77, seed, scratch=seed % 2 == 0).image,
                           [cv2.IMWRITE_JPEG_QUALITY, quality_level])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))


def test_blockiness_is_bit_for_bit_the_numpy_definition() -> None:
    rng = np.random.default_rng(3)
    frames = [_jpeg_frame(q, i) for i, q in enumerate((95, 60, 20))]
    frames += [rng.integers(0, 256, (37, 61, 3), dtype=np.uint8), np.zeros((15, 300, 3), np.uint8),
               np.full((64, 64, 3), 200, np.uint8)]
    for frame in frames:
        assert quality.blockiness(frame) == _numpy_blockiness(frame)


def test_tensor_batch_is_bit_for_bit_to_tensor_array() -> None:
    rng = np.random.default_rng(4)
    canvases = [rng.integers(0, 256, (64, 30, 3), dtype=np.uint8) for _ in range(5)]
    fast, plain = tensor_batch(canvases), to_tensor_array(canvases)
    assert fast.dtype == plain.dtype == np.float32 and fast.shape == plain.shape == (5, 3, 64, 30)
    assert np.array_equal(fast, plain) and fast.flags.c_contiguous


@pytest.mark.skipif(not (BASELINE / "model.json").is_file(), reason="the shipped baseline is missing")
def test_score_stream_gives_the_sequential_results_in_order() -> None:
    predictor = load_predictor(BASELINE, threads=1)
    blobs = []
    for i in range(5):
        ok, buf = cv2.imencode(".jpg", render(4242, i, scratch=i % 2 == 0).image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        blobs.append(buf.tobytes())
    blobs.insert(2, b"not an image")  # a bad item keeps its place and gets an error, the rest are scored
    plain = predictor.score_prepared([predictor.prepare_bytes(b) for b in blobs])
    streamed = list(predictor.score_stream(blobs, batch=2, workers=2))
    # the same items in the same order; a batch of 2 instead of 6 may move a score in the last bits
    assert [s.prediction.score for s in streamed] == pytest.approx([s.prediction.score for s in plain], abs=1e-6)
    assert [s.prediction.error for s in streamed] == [s.prediction.error for s in plain]
    assert [len(s.prediction.regions) for s in streamed] == [len(s.prediction.regions) for s in plain]
    assert streamed[2].prediction.score is None and streamed[2].prediction.error


def _doubling(sizes: list[int]) -> MicroBatcher[int, int]:
    def run(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(0.05)  # a forward pass: others arrive meanwhile
        return [2 * i for i in items]

    return MicroBatcher(run, max_items=4, max_wait_s=0.2)


def test_concurrent_items_are_batched_up_to_the_limit_and_each_gets_its_own_result() -> None:
    sizes: list[int] = []
    batcher = _doubling(sizes)
    futures = [batcher.submit(i) for i in range(10)]
    assert [f.result(timeout=10) for f in futures] == [2 * i for i in range(10)]
    assert max(sizes) == 4 and sum(sizes) == 10 and len(sizes) < 10


def test_a_lone_item_waits_at_most_the_wait_time() -> None:
    batcher = MicroBatcher(lambda items: [i + 1 for i in items], max_items=16, max_wait_s=0.05)
    t0 = time.perf_counter()
    assert batcher.submit(1).result(timeout=5) == 2
    assert time.perf_counter() - t0 < 2.0  # 50 ms collecting plus scheduling on a busy machine
    assert batcher.batches == [1]


def test_a_failing_batch_fails_every_waiting_item() -> None:
    def boom(items: Sequence[int]) -> list[int]:
        raise RuntimeError("model error")

    batcher: MicroBatcher[int, int] = MicroBatcher(boom, max_items=4, max_wait_s=0.05)
    futures = [batcher.submit(i) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="model error"):
            f.result(timeout=5)
    wrong: MicroBatcher[int, int] = MicroBatcher(lambda items: [], max_items=2, max_wait_s=0.0)
    with pytest.raises(RuntimeError, match="gave 0 outputs"):
        wrong.submit(1).result(timeout=5)


def test_a_cancelled_item_is_not_run() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def run(items: Sequence[int]) -> list[int]:
        gate.wait(5)
        seen.extend(items)
        return list(items)

    batcher = MicroBatcher(run, max_items=1, max_wait_s=0.0)
    first = batcher.submit(1)  # occupies the worker until the gate opens
    time.sleep(0.1)
    abandoned = batcher.submit(2)
    assert abandoned.cancel()  # what a request that timed out does
    kept = batcher.submit(3)
    gate.set()
    assert first.result(timeout=5) == 1 and kept.result(timeout=5) == 3
    assert seen == [1, 3]


def test_settings_refuse_a_batch_of_zero() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(lambda items: list(items), max_items=0, max_wait_s=0.0)


@pytest.mark.parametrize("jpeg_quality", [95, 75, 40])
def test_ingest_and_predict_measure_the_same_blockiness_on_a_reduced_decode(jpeg_quality: int) -> None:
    """Ingest decodes the whole frame and area-averages it; predict and training decode at reduced size
    (DCT scaling): the JPEG grid must read the same on both, or the gate's limit (measured on the latter)
    does not fit live traffic. Measured on the whole frame it read ~1.5x higher."""
    predictor = load_predictor(BASELINE, threads=1)
    ok, buf = cv2.imencode(".jpg", render(78, 1, scratch=True, size=(1920, 1080), setup="varied").image,
                           [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    assert ok and predictor.meta.preprocess.decode_reduce(1920, 1080) > 1  # the reduced path is taken
    data = buf.tobytes()
    from_bytes = predictor.prepare_bytes(data)
    from_frame = predictor.prepare_image(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert from_bytes.warped is not None and from_frame.warped is not None
    # within 5 % (area average vs DCT scaling); the whole frame read 1.3-1.8x the reduced decode
    assert from_frame.quality["blockiness"] == pytest.approx(from_bytes.quality["blockiness"], rel=0.05)


@pytest.mark.parametrize("frozen", [FROZEN_BLOCKS, 10])
def test_the_frozen_part_through_onnx_runtime_gives_torchs_features(frozen: int) -> None:
    net = ScratchNet(NetConfig())
    load_imagenet_backbone(net)
    net.eval()
    spec = PreprocessSpec(canvas_h=128, canvas_w=64)
    runner = onnx_frozen_part(net, frozen, spec, threads=1)
    # the export leaves the network as it found it (a wrapper in training mode switched it all to training)
    assert not any(m.training for m in net.modules())
    batch = np.random.default_rng(0).normal(0.0, 1.0, (3, 3, 128, 64)).astype(np.float32)
    with torch.inference_mode():
        expected = frozen_part(net, torch.from_numpy(batch), frozen)
    got = runner(batch)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 1e-3 * float(expected.abs().max())
