"""Training and calibration.

CPU budget drives the design: the stem and first 5 blocks of the pretrained backbone (the costly
high-resolution layers, ~75 % of a forward pass) stay frozen, so their output is computed once per
image and cached (float16, ~150 kB per image). Epochs then run only the later blocks and the head,
~10x cheaper. Pixel masks (or boxes), where the data has them, supervise every heatmap cell; images
without them learn from their image label alone (multiple-instance: a negative image has no positive
cell anywhere, a positive one has at least one).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from inspection.core.metrics import auroc, expected_calibration_error
from inspection.vision.artifact import ModelMeta, export_onnx, load_artifact, save_artifact
from inspection.vision.dataset import Example, data_hash, list_imagefolder, truth_mask
from inspection.vision.folds import holdout_split
from inspection.vision.model import CELL, NetConfig, ScratchNet, load_imagenet_backbone, pool_logits
from inspection.vision.onnx_session import cpu_session
from inspection.vision.predictor import Predictor, Prepared, onnx_forward
from inspection.vision.preprocess import PreprocessSpec, to_tensor_array
from inspection.vision.reference import build_blocks, measure_files
from inspection.vision.tiles import cut_windows, oriented, window_offsets

# The stem and blocks 0-4 (stride 8, 40 channels) stay as initialised: their output is computed once per
# image and cached, the rest trains on it. A warm start freezing 10 of 11 was 2x faster per epoch but lost to
# production on bench_retrain's held-out items (0.992 vs 0.995; with 5: 1.0), so fine-tunes keep 5 too.
FROZEN_BLOCKS = 5
UNKNOWN = -1.0  # cell target for positives without ground truth


class TrainingError(ValueError):
    """Training cannot produce a sound model from this data (with the reason)."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.15
    patience: int = 3  # early stopping: epochs without a better validation score
    # which validation score picks the kept epoch: "loss" (image log loss), or "auroc" where the loss swings
    # with over-confidence while the ranking still improves (small real sets, windows: goggles fold 0 kept
    # epoch 2 at validation AUROC 0.78 by its loss, against 0.88 at epoch 4)
    select: str = "loss"
    groups: str | None = None  # regex on the file name giving the group: the validation split keeps groups whole
    seed: int = 0
    cell_weight: float = 1.0
    orientations: int = 1  # cached copies per image: 1, 2 (+ mirrored) or 4 (+ upside down, + turned 180)
    tile: int = 0  # training window side in canvas px (vision.tiles); 0 = whole canvases
    threads: int = 2
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    net: NetConfig = field(default_factory=NetConfig)
    init_from: Path | None = None  # an artifact whose weights to fine-tune (None: ImageNet's backbone)


@dataclass(frozen=True)
class TrainReport:
    out: Path
    version: str
    n_train: int
    n_val: int
    epochs_run: int
    seconds: float
    temperature: float
    val_auroc: float
    ece_before: float
    ece_after: float
    errors: tuple[str, ...]


@dataclass
class Cached:
    feats: torch.Tensor  # N x C x h x w float16
    cells: torch.Tensor  # N x h' x w' float32 targets in {0, 1, UNKNOWN}
    labels: torch.Tensor  # N float32


def frozen_part(net: ScratchNet, x: torch.Tensor, frozen: int = FROZEN_BLOCKS) -> torch.Tensor:
    x = net.act(net._bn0(net._conv_stem(x)))
    for block in net._blocks[:frozen]:
        x = block(x)
    return x


class _Frozen(nn.Module):
    def __init__(self, net: ScratchNet, frozen: int) -> None:
        super().__init__()
        self.net, self.frozen = net, frozen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return frozen_part(self.net, x, self.frozen)


FrozenRunner = Callable[[np.ndarray], torch.Tensor]


def onnx_frozen_part(net: ScratchNet, frozen: int, spec: PreprocessSpec, *, threads: int) -> FrozenRunner:
    """The frozen part through ONNX Runtime: N x 3 x H x W float32 -> its features. Caching runs it once
    per image, and eager torch is slow at it on a small CPU: depthwise convolutions at 512x240 took 64.9 ms
    per image on 2 cores against 7.3 ms through ONNX Runtime (scripts/bench_retrain.py --caching-only),
    ~115 s of a 2,000-image retrain."""
    net.eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "frozen.onnx"
        torch.onnx.export(_Frozen(net, frozen).eval(), (torch.zeros(1, 3, spec.canvas_h, spec.canvas_w),), str(path),
                          input_names=["x"], output_names=["f"], dynamic_axes={"x": {0: "n"}, "f": {0: "n"}},
                          opset_version=17, dynamo=False)
        model = path.read_bytes()
    session = cpu_session(model, threads=threads)

    def run(batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(session.run(["f"], {"x": batch})[0]))

    return run


def trainable_part(net: ScratchNet, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = feats
    for block in net._blocks[FROZEN_BLOCKS:]:
        x = block(x)
    cells = net.head(x)[:, 0]
    return pool_logits(cells, net.config.pool_r), cells


def cell_targets(mask: np.ndarray | None, prep: Prepared, label: int, spec: PreprocessSpec) -> np.ndarray:
    gh, gw = math.ceil(spec.canvas_h / CELL), math.ceil(spec.canvas_w / CELL)
    if label == 0:
        return np.zeros((gh, gw), np.float32)  # a negative image has no scratch in any cell
    if mask is None or prep.warped is None:
        return np.full((gh, gw), UNKNOWN, np.float32)
    warped = cv2.warpAffine(mask, prep.warped.to_canvas, (spec.canvas_w, spec.canvas_h), flags=cv2.INTER_AREA)
    padded = np.zeros((gh * CELL, gw * CELL), np.uint8)
    padded[: warped.shape[0], : warped.shape[1]] = warped
    # a cell is positive when a visible part of the scratch crosses it
    return (padded.reshape(gh, CELL, gw, CELL).max(axis=(1, 3)) > 40).astype(np.float32)


def cache_features(
    net: ScratchNet, predictor: Predictor, root: Path, examples: Sequence[Example], *, orientations: int,
    desc: str, runner: FrozenRunner, qualities: list[dict[str, float]] | None = None,
) -> tuple[Cached, list[str]]:
    """Frozen-backbone features of every usable image (through `runner`, onnx_frozen_part), in
    `orientations` copies (vision.tiles.oriented); `qualities` collects their gate metrics."""
    spec = predictor.meta.preprocess
    feats: list[torch.Tensor] = []
    cells: list[np.ndarray] = []
    labels: list[float] = []
    errors: list[str] = []
    net.eval()
    batch: list[tuple[np.ndarray, np.ndarray, int]] = []

    def flush() -> None:
        copies = [oriented(canvas, target, k) for k in range(orientations) for canvas, target, _ in batch]
        f = runner(to_tensor_array([c for c, _ in copies]))
        feats.append(f.to(torch.float16))
        cells.extend(t for _, t in copies)
        labels.extend(float(y) for _ in range(orientations) for _, _, y in batch)
        batch.clear()

    for ex in tqdm(examples, desc=desc, unit="img", file=sys.stderr, leave=False):
        prep = predictor.prepare_file(ex.path)
        if prep.warped is None:
            errors.append(f"{ex.path}: {prep.error}")
            continue
        if qualities is not None:
            qualities.append(prep.quality)
        mask = truth_mask(root, ex, prep.frame_wh)
        batch.append((prep.warped.canvas, cell_targets(mask, prep, ex.label, spec), ex.label))
        # ~16 phone canvases (2 Mpx) per run: ONNX Runtime's activations for 16 copies of a 1 Mpx canvas
        # held 8 GB
        if len(batch) * orientations * spec.canvas_h * spec.canvas_w >= 16 * 512 * 240:
            flush()
    if batch:
        flush()
    if not feats:
        raise TrainingError(f"no usable images in {desc} ({len(errors)} errors)")
    return Cached(torch.cat(feats), torch.from_numpy(np.stack(cells)), torch.tensor(labels)), errors


def losses(
    net: ScratchNet, batch_feats: torch.Tensor, targets: torch.Tensor, ys: torch.Tensor, pos_weight: float,
    cell_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    logit, cells = trainable_part(net, batch_feats.float())
    weights = torch.where(ys > 0.5, torch.tensor(pos_weight), torch.tensor(1.0))
    image_loss = F.binary_cross_entropy_with_logits(logit, ys, weight=weights)
    known = targets >= 0
    cell_loss = torch.tensor(0.0)
    if known.any():
        # positive cells are rare (thin lines): weight them up so the heatmap does not stay dark
        w = torch.where(targets[known] > 0.5, torch.tensor(4.0), torch.tensor(1.0))
        cell_loss = F.binary_cross_entropy_with_logits(cells[known], targets[known], weight=w)
    return image_loss + cell_weight * cell_loss, logit.detach()


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising validation NLL (1-D search over log T; no gradients needed)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 400))

    def nll(t: float) -> float:
        z = logits / t
        return float(np.mean(np.logaddexp(0, z) - labels * z))

    return float(min(grid, key=nll))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def predict_logits(net: ScratchNet, feats: torch.Tensor) -> np.ndarray:
    net.eval()
    out = []
    step = max(1, 64 * 2048 // (feats.shape[2] * feats.shape[3]))  # 64 phone canvases' worth of memory
    with torch.inference_mode():
        for i in range(0, len(feats), step):
            out.append(trainable_part(net, feats[i : i + step].float())[0])
    return torch.cat(out).numpy()


def better(val_auroc: float, val_loss: float, best: tuple[float, float] | None, *, select: str) -> bool:
    """Whether this epoch beats the kept one (`best`: its AUROC and loss). By AUROC, an equal AUROC (within
    1e-4) falls to the lower loss: a validation AUROC saturated at 1.0 kept NEU-DET fold 2's first epoch,
    with ECE 0.46 after temperature."""
    if best is None:
        return True
    auc, loss = best
    if select == "auroc":
        return val_auroc > auc + 1e-4 or (val_auroc >= auc - 1e-4 and val_loss < loss - 1e-4)
    return val_loss < loss - 1e-4


def warm_start(net: ScratchNet, config: TrainConfig) -> None:
    """Copy a trained artifact's weights into `net`. Only a model with the same network and input
    preprocessing can be fine-tuned: its cells and features would mean something else otherwise."""
    assert config.init_from is not None
    source, meta = load_artifact(config.init_from)
    if meta.net != config.net or meta.preprocess != config.preprocess:
        raise TrainingError(f"cannot fine-tune {config.init_from.name}: its network or preprocessing differs "
                            f"({meta.net}, {meta.preprocess} vs {config.net}, {config.preprocess})")
    net.load_state_dict(source.state_dict(), strict=True)


def train(
    data: Path,
    out: Path,
    *,
    positive: str = "scratch",
    config: TrainConfig = TrainConfig(),
    version: str | None = None,
    log: Callable[[str], None] = print,
) -> TrainReport:
    t_start = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, config.threads))
    examples = list_imagefolder(data, positive=positive)
    labels = [e.label for e in examples]
    if config.select not in ("loss", "auroc"):
        raise TrainingError(f"unknown selection score {config.select!r} (loss or auroc)")
    rest, held = holdout_split(examples, fraction=config.val_fraction, seed=config.seed, groups=config.groups)
    if min(sum(labels[i] for i in held), len(held) - sum(labels[i] for i in held)) < 2:
        raise TrainingError("too few images to hold out a validation split with both classes (need >= 2 each)")

    net = ScratchNet(config.net)
    load_imagenet_backbone(net)
    if config.init_from is not None:
        warm_start(net, config)
    version = version or out.name  # the registry names a model by its directory
    meta = ModelMeta(version=version, net=config.net, preprocess=config.preprocess, positive=positive)
    predictor = Predictor(net, meta, threads=config.threads)

    qualities: list[dict[str, float]] = []  # the domain gate's reference: every usable image's metrics
    runner = onnx_frozen_part(net, FROZEN_BLOCKS, config.preprocess, threads=config.threads)
    tr, tr_err = cache_features(net, predictor, data, [examples[i] for i in rest], orientations=config.orientations,
                                desc="caching train", runner=runner, qualities=qualities)
    va, va_err = cache_features(net, predictor, data, [examples[i] for i in held], orientations=1,
                                desc="caching val", runner=runner, qualities=qualities)
    log(f"cached the frozen features of {len(tr.labels) + len(va.labels)} canvases in "
        f"{time.perf_counter() - t_start:.1f} s (ONNX Runtime)")
    errors = tr_err + va_err
    for e in errors:
        log(f"skipped (cannot be used): {e}")

    n_pos = float(tr.labels.sum())
    # positives whose every heatmap cell has a target: ground-truth masks (or inspectors' marks, see
    # services.retrain) supervise them; the others learn from their image label alone
    supervised = int(((tr.cells >= 0).flatten(1).all(dim=1) & (tr.labels > 0.5)).sum())
    log(f"{supervised} of {int(n_pos)} training positives have a mask supervising the heatmap")
    pos_weight = (len(tr.labels) - n_pos) / max(n_pos, 1.0)
    params = [p for b in net._blocks[FROZEN_BLOCKS:] for p in b.parameters()] + list(net.head.parameters())
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-4)
    # an epoch visits as many canvases (or windows) as there are images, drawn from all their cached copies:
    # the copies add variety, not cost (4 orientations of NEU-DET's 1,440 would make an epoch 4x longer)
    per_epoch = len(tr.labels) // config.orientations
    tile_cells = config.tile // CELL
    steps_per_epoch = math.ceil(per_epoch / config.batch_size)
    rng = np.random.default_rng(config.seed)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)

    best: tuple[float, float] | None = None  # (validation AUROC, loss) of the kept epoch
    best_state, stale, epochs_run = None, 0, 0
    history: list[dict[str, float]] = []  # per epoch: mean train loss, validation loss and AUROC
    for epoch in range(config.epochs):
        epochs_run = epoch + 1
        train_mode(net)
        order = torch.randperm(len(tr.labels), generator=gen)[:per_epoch]
        train_losses: list[float] = []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", file=sys.stderr, leave=False)
        for step in bar:
            idx = order[step * config.batch_size : (step + 1) * config.batch_size]
            if config.tile:
                feats, cells = cut_windows(tr.feats, tr.cells, idx,
                                           window_offsets(tr.cells, tr.labels, idx, tile_cells, rng), tile_cells)
            else:
                feats, cells = tr.feats[idx], tr.cells[idx]
            loss, _ = losses(net, feats, cells, tr.labels[idx], pos_weight, config.cell_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
            train_losses.append(loss.item())
        val_logits = predict_logits(net, va.feats)
        yv = va.labels.numpy()
        val_loss = float(np.mean(np.logaddexp(0, val_logits) - yv * val_logits))
        val_auc_epoch = auroc(sigmoid(val_logits), yv)
        history.append({"epoch": epoch + 1, "train_loss": round(float(np.mean(train_losses)), 5),
                        "val_loss": round(val_loss, 5), "val_auroc": round(val_auc_epoch, 5)})
        log(f"epoch {epoch + 1}: val loss {val_loss:.4f}, val AUROC {val_auc_epoch:.4f}")
        if better(val_auc_epoch, val_loss, best, select=config.select):
            best, stale = (val_auc_epoch, val_loss), 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                log(f"early stop: no better validation {config.select} for {config.patience} epochs")
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()

    val_logits = predict_logits(net, va.feats)
    yv = va.labels.numpy()
    temperature = fit_temperature(val_logits, yv)
    ece_before = expected_calibration_error(sigmoid(val_logits), yv)
    ece_after = expected_calibration_error(sigmoid(val_logits / temperature), yv)
    val_auc = auroc(sigmoid(val_logits), yv)
    seconds = time.perf_counter() - t_start
    metrics = {
        "val_auroc": round(val_auc, 5),
        "val_ece_before_calibration": round(ece_before, 5),
        "val_ece_after_calibration": round(ece_after, 5),
        "n_train": int(len(tr.labels)),
        "n_val": int(len(va.labels)),
    }
    training = {
        "epochs_run": epochs_run,
        "history": history,
        "seconds": round(seconds, 1),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(config).items()
                   if k not in ("preprocess", "net")},
        "frozen_blocks": FROZEN_BLOCKS,
        "data": str(data),
        "skipped_files": len(errors),
        "mask_supervised_positives": supervised,
    }
    meta = ModelMeta(
        version=version, net=config.net, preprocess=config.preprocess, temperature=temperature,
        positive=positive, data_hash=data_hash(examples), metrics=metrics, training=training,
    )
    meta = with_references(net, meta, [examples[i].path for i in held], qualities, data=data,
                           threads=config.threads, log=log)
    save_artifact(out, net, meta)
    plot_history(history, out / "training.png")
    return TrainReport(out, version, len(tr.labels), len(va.labels), epochs_run, seconds, temperature, val_auc,
                       ece_before, ece_after, tuple(errors))


def with_references(
    net: ScratchNet, meta: ModelMeta, val_paths: Sequence[Path], qualities: Sequence[dict[str, float]], *,
    data: Path, threads: int, log: Callable[[str], None],
) -> ModelMeta:
    """`meta` with its `domain` and `monitor` blocks. The validation images (unseen by the fit), scored by
    the finished model, give the features basis, the ood limit and the monitor's samples: one more pass
    over them, a few per cent of the training time. The gate's other ranges still come from every usable
    image (`qualities`). Too few images: no domain block (the gate's floors only), no ood range, maybe
    no features basis (vision.reference.build_blocks)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # through ONNX Runtime, as serving scores: eager torch took 85 s for 78 goggles canvases of 800x1328
        export_onnx(net, meta, Path(tmp) / "model.onnx")
        forward = onnx_forward(Path(tmp) / "model.onnx", threads=threads)
        measured, unreadable = measure_files(Predictor(net, meta, threads=threads, forward=forward), val_paths)
    domain, monitor = build_blocks(
        measured, source=f"{len(measured.rows)} validation images of {data}", qualities=qualities,
        domain_source=f"{len(qualities)} training and validation images of {data}", unreadable=unreadable,
    )
    log(f"reference distributions from {len(measured.rows)} validation images in {time.perf_counter() - t0:.1f} s")
    return replace(meta, domain=domain, monitor=monitor)


def train_mode(net: ScratchNet) -> None:
    """Frozen layers keep their ImageNet batch-norm statistics; only the trained part updates them."""
    net.eval()
    for block in net._blocks[FROZEN_BLOCKS:]:
        block.train()
    net.head.train()


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Learning curves next to the weights: people read a curve faster than a table."""
    import matplotlib  # plotting only here: not loaded by serving or tests that never plot

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100)
    loss_ax, auc_ax = fig.subplots(1, 2)
    epochs = [h["epoch"] for h in history]
    loss_ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train (image + cell)")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation (image)")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    auc_ax.plot(epochs, [h["val_auroc"] for h in history], marker="o", color="tab:green")
    auc_ax.set(xlabel="epoch", ylabel="AUROC", title="validation AUROC")
    fig.tight_layout()
    fig.savefig(path)
