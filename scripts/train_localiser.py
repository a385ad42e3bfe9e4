"""Train the learned localiser (`inspection.vision.segment`) and write models/localiser/.

Data recipe (all generated, seeds disjoint from the bench's 90210 and the tests' 1, 11, 4242):
- `varied` and `closeup` scenes of `inspection.vision.synth.render` (seeds TRAIN_SEEDS) at several frame
  sizes and aspects (16:9 at 480-960 px wide, 4:3, square, portrait), plus tables with no phone
  (the varied look's table and camera, target all zero) so that an empty frame stays empty;
- domain randomisation on top of the generator's own (tables near-black to white, any body, bezel,
  rotation, scale, blur, exposure, cast): random flips, channel permutations (any hue), per-channel
  gains, gamma, contrast inversion of the whole frame (a light phone on a dark table and the reverse),
  greyscale, and noise;
- targets: the generator's glass and phone masks, area-resized to the output (1/4 of the input).
Loss: BCE + soft Dice on the glass, BCE on the phone (a second head that helps the first see the body).

    nice -n 10 .venv/bin/python scripts/train_localiser.py            # ~4-5 min on 2 cores
Prints data and training time and the validation IoU (mask, and rectangle fitted to it) on a held-out
seed, then writes weights.safetensors, localiser.onnx and localiser.json (the recipe) to --out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual name)
from safetensors.torch import save_file
from torch import nn

from inspection.vision import setups
from inspection.vision.segment import INPUT_H, INPUT_W, META_NAME, MODEL_DIR, ONNX_NAME, net_input
from inspection.vision.synth import render

TRAIN_SEEDS = {"varied": 7301, "closeup": 7302, "empty": 7303}
VAL_SEEDS = {"varied": 7311, "closeup": 7312}
SIZES = ((480, 270), (640, 360), (960, 540), (480, 360), (400, 400), (270, 480), (560, 315))
OUT_W, OUT_H = INPUT_W // 4, INPUT_H // 4
VERSION = 1
AUGMENT = "flips, channel permutation, per-channel gain, gamma, inversion (p=0.2), grey (p=0.15), noise"


# -- the network ------------------------------------------------------------------------------------


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """Stride-2 stem, three more down-steps to 1/16 (7x12: the whole frame in view for context), and
    back up to 1/4 with skips (a full-resolution decoder doubled the training time for nothing that
    the snap onto the outline does not give back). ~25 M multiply-adds at 192x112."""

    def __init__(self, widths: tuple[int, ...] = (12, 16, 24, 32)) -> None:
        super().__init__()
        a, b, c, d = widths
        self.stem = _conv(3, a, 2)
        self.down1 = nn.Sequential(_conv(a, b, 2), _conv(b, b))
        self.down2 = nn.Sequential(_conv(b, c, 2), _conv(c, c))
        self.down3 = nn.Sequential(_conv(c, d, 2), _conv(d, d), _conv(d, d))
        self.up2 = _conv(d + c, c)
        self.up1 = _conv(c + b, b)
        self.head = nn.Conv2d(b, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.stem(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        e3 = self.down3(e2)
        u = self.up2(torch.cat([F.interpolate(e3, size=e2.shape[2:], mode="bilinear"), e2], 1))
        u = self.up1(torch.cat([F.interpolate(u, size=e1.shape[2:], mode="bilinear"), e1], 1))
        return self.head(u)  # logits: glass, phone


# -- data -------------------------------------------------------------------------------------------


def _empty_table(seed: int, index: int, size: tuple[int, int]) -> np.ndarray:
    """A varied table and camera with no phone on it."""
    w, h = size
    rng = np.random.default_rng([seed, index])
    look = setups.sample_look(rng, "varied", w, h)
    far = np.array([[-900.0, -900.0], [-899.0, -900.0], [-899.0, -899.0]])
    img = setups.table(rng, look, w, h, far, 1.0)
    return setups.camera(rng, look, img, min(w / 1920, h / 1080))


def _example(job: tuple[str, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(input image uint8 INPUT_HxINPUT_Wx3, targets uint8 2xOUT_HxOUT_W) for one generated frame."""
    kind, seed, index = job
    size = SIZES[(index * 7 + seed) % len(SIZES)]
    if kind == "empty":
        image, masks = _empty_table(seed, index, size), np.zeros((2, size[1], size[0]), np.uint8)
    else:
        s = render(seed, index, scratch=index % 3 == 0, size=size, setup=kind)
        image, masks = s.image, np.stack([s.glass, s.phone])
    small = cv2.resize(image, (INPUT_W, INPUT_H), interpolation=cv2.INTER_AREA)
    target = np.stack([cv2.resize(m, (OUT_W, OUT_H), interpolation=cv2.INTER_AREA) for m in masks])
    return small, target


def make_data(counts: dict[str, int], seeds: dict[str, int], workers: int) -> tuple[np.ndarray, np.ndarray]:
    jobs = [(kind, seeds[kind], i) for kind, n in counts.items() for i in range(n)]
    with multiprocessing.get_context("fork").Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
        pairs = pool.map(_example, jobs, chunksize=16)
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def augment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Domain randomisation on a batch (N x H x W x 3 uint8 images, N x 2 x h x w targets): float
    images in [0, 1] and float targets."""
    img = x.astype(np.float32) / 255.0
    tgt = y.astype(np.float32) / 255.0
    n = len(img)
    for i in range(n):
        if rng.random() < 0.5:
            img[i], tgt[i] = img[i, :, ::-1], tgt[i, :, :, ::-1]
        if rng.random() < 0.5:
            img[i], tgt[i] = img[i, ::-1], tgt[i, :, ::-1]
        img[i] = img[i][..., rng.permutation(3)]
        if rng.random() < 0.15:
            img[i] = img[i].mean(axis=2, keepdims=True)
        if rng.random() < 0.2:
            img[i] = 1.0 - img[i]
    gain = np.exp(rng.normal(0.0, 0.12, (n, 1, 1, 3))) * np.exp(rng.normal(0.0, 0.25, (n, 1, 1, 1)))
    gamma = np.exp(rng.normal(0.0, 0.25, (n, 1, 1, 1)))
    img = np.clip(img * gain.astype(np.float32), 1e-4, 1.0) ** gamma.astype(np.float32)
    img += rng.normal(0.0, 1.0, img.shape).astype(np.float32) * rng.uniform(0.0, 0.03, (n, 1, 1, 1)).astype(np.float32)
    img = (np.clip(img, 0.0, 1.0) - 0.5) / 0.25
    return np.ascontiguousarray(img.transpose(0, 3, 1, 2)), np.ascontiguousarray(tgt)


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits[:, 0])
    t = target[:, 0]
    dice = 1.0 - (2 * (p * t).sum((1, 2)) + 1.0) / (p.sum((1, 2)) + t.sum((1, 2)) + 1.0)
    return bce + 0.5 * dice.mean()


# -- training and validation ------------------------------------------------------------------------


def rect_iou(prob: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """IoU with the true glass (at the output size, x4 upsampled) of the thresholded mask, and of the
    rotated rectangle fitted to its largest component."""
    up = cv2.resize(prob, (OUT_W * 4, OUT_H * 4), interpolation=cv2.INTER_LINEAR) > 0.5
    gt = cv2.resize(truth, (OUT_W * 4, OUT_H * 4), interpolation=cv2.INTER_LINEAR) > 0.5
    union = np.count_nonzero(up | gt)
    mask_iou = np.count_nonzero(up & gt) / union if union else 1.0
    contours, _ = cv2.findContours(up.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return mask_iou, 0.0 if gt.any() else 1.0
    box = cv2.boxPoints(cv2.minAreaRect(max(contours, key=cv2.contourArea)))
    fitted = np.zeros(up.shape, np.uint8)
    cv2.fillPoly(fitted, [np.round(box).astype(np.int32)], 1)
    union = np.count_nonzero((fitted > 0) | gt)
    return mask_iou, np.count_nonzero((fitted > 0) & gt) / union if union else 1.0


def evaluate(net: TinyUNet, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    net.eval()  # and left so: export and the ONNX check need the running BatchNorm statistics
    with torch.inference_mode():
        xs = (torch.from_numpy(x).float().permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.25
        prob = torch.sigmoid(net(xs)[:, 0]).numpy()
    pairs = [rect_iou(p, t.astype(np.float32) / 255.0) for p, t in zip(prob, y[:, 0], strict=True)]
    masks, rects = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return {"mask_iou_median": round(float(np.median(masks)), 4), "rect_iou_median": round(float(np.median(rects)), 4),
            "rect_iou_ge_0.9": round(float(np.mean(rects >= 0.9)), 4)}


def train(x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int, seed: int) -> TinyUNet:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = TinyUNet()
    steps = epochs * math.ceil(len(x) / batch)
    opt = torch.optim.AdamW(net.parameters(), lr=4e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=steps, pct_start=0.15)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(x), batch):
            idx = np.sort(order[start:start + batch])
            xb, yb = augment(x[idx], y[idx], rng)
            loss = loss_fn(net(torch.from_numpy(xb)), torch.from_numpy(yb))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}", flush=True)
    return net.eval()


def export(net: TinyUNet, out: Path, meta: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    net.eval()
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / "weights.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, INPUT_H, INPUT_W),), str(out / ONNX_NAME), input_names=["x"],
                          output_names=["masks"], opset_version=17, dynamo=False)
    meta["sha256"] = {name: hashlib.sha256((out / name).read_bytes()).hexdigest()
                      for name in ("weights.safetensors", ONNX_NAME)}
    (out / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")


def check_onnx(out: Path, x: np.ndarray, net: TinyUNet) -> float:
    """Largest |difference| between ONNX Runtime's and torch's logits on a few inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / ONNX_NAME), providers=["CPUExecutionProvider"])
    worst = 0.0
    for img in x[:8]:
        inp = net_input(cv2.resize(img, (INPUT_W, INPUT_H)))
        with torch.inference_mode():
            ref = net(torch.from_numpy(inp)).numpy()
        worst = max(worst, float(np.abs(session.run(["masks"], {"x": inp})[0] - ref).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--varied", type=int, default=2000)
    parser.add_argument("--closeup", type=int, default=800)
    parser.add_argument("--empty", type=int, default=120)
    parser.add_argument("--val", type=int, default=200, help="held-out scenes per setup")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and augmentation")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    torch.set_num_threads(args.workers)
    t0 = time.perf_counter()
    counts = {"varied": args.varied, "closeup": args.closeup, "empty": args.empty}
    x, y = make_data(counts, TRAIN_SEEDS, args.workers)
    vx, vy = make_data({"varied": args.val, "closeup": args.val}, VAL_SEEDS, args.workers)
    t_data = time.perf_counter() - t0
    print(f"data: {len(x)} training and {len(vx)} validation frames in {t_data:.0f} s", flush=True)
    net = train(x, y, epochs=args.epochs, batch=args.batch, seed=args.seed)
    t_train = time.perf_counter() - t0 - t_data
    val = {setup: evaluate(net, vx[k * args.val:(k + 1) * args.val], vy[k * args.val:(k + 1) * args.val])
           for k, setup in enumerate(VAL_SEEDS)}
    meta: dict[str, object] = {
        "version": VERSION, "input": [INPUT_W, INPUT_H], "output": [OUT_W, OUT_H], "channels": ["glass", "phone"],
        "normalise": {"mean": 0.5, "std": 0.25, "order": "BGR, /255"}, "training_seed": args.seed,
        "data": {"train_seeds": TRAIN_SEEDS, "val_seeds": VAL_SEEDS, "counts": counts, "val_per_setup": args.val,
                 "sizes": [list(s) for s in SIZES],
                 "augment": AUGMENT},
        "epochs": args.epochs, "batch": args.batch, "seconds": {"data": round(t_data), "train": round(t_train)},
        "validation": val, "parameters": sum(p.numel() for p in net.parameters()),
    }
    export(net, args.out, meta)
    diff = check_onnx(args.out, vx, net)
    print(json.dumps({"seconds_data": round(t_data), "seconds_train": round(t_train), "validation": val,
                      "onnx_max_abs_diff": round(diff, 6), "out": str(args.out)}))


if __name__ == "__main__":
    main()
