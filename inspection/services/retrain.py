"""Retraining from stored human labels: dataset → held-out split → candidate → evaluation of the
candidate AND production on the same held-out items → registration (a new directory under
models_dir with its metrics and data snapshot in model.json, plus an event).

Where inspectors marked the scratch (services.marks), a training item trained as scratch gets the mask
of its marks as `masks/<stem>.png`, which training reads like any dataset's ground truth: the marked
cells supervise the heatmap (vision.train.cell_targets), unmarked items learn from their label alone.

Labelled images are never copied: the training ImageFolder is a tree of hard links (symbolic links
where the file system refuses) into the content-addressed image store, under a temporary work
folder inside data_dir that is removed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inspection import store
from inspection.core.schedule import default_epochs
from inspection.services import marks as marks_service
from inspection.services.compare import worse_than_production
from inspection.services.context import Pipeline
from inspection.services.registry import current_state, read_artifact
from inspection.vision.artifact_meta import update_metrics
from inspection.vision.dataset import data_hash, list_imagefolder
from inspection.vision.images import ImageError, read_image_file
from inspection.vision.preprocess import PreprocessSpec

__all__ = [
    "MIN_PER_CLASS",
    "LabelledItem",
    "NotEnoughLabels",
    "RetrainResult",
    "check_enough",
    "holdout_split",
    "labelled_items",
    "retrain",
    "score_items",
]

MIN_PER_CLASS = 20
CLASSES = ("scratch", "ok")
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,5}$")


class NotEnoughLabels(ValueError):
    """Too few stored labels for a sound candidate; the message says how many more of which class."""

    def __init__(self, message: str, *, counts: dict[str, int], needed: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts
        self.needed = needed


@dataclass(frozen=True)
class LabelledItem:
    inspection_id: int
    sha256: str
    path: str  # relative to data_dir
    label: str  # scratch | ok
    audit: bool
    station: str


# Pure parts


def check_enough(items: Sequence[LabelledItem], *, min_per_class: int = MIN_PER_CLASS) -> None:
    counts = {c: sum(1 for i in items if i.label == c) for c in CLASSES}
    needed = {c: max(0, min_per_class - n) for c, n in counts.items()}
    if any(needed.values()):
        more = " and ".join(f"{n} more {c}" for c, n in needed.items() if n)
        raise NotEnoughLabels(
            f"too few labels to retrain: {counts['scratch']} scratch and {counts['ok']} ok stored "
            f"(need at least {min_per_class} of each class); label {more}",
            counts=counts,
            needed=needed,
        )


def _draw(seed: int, sha: str) -> str:
    return hashlib.sha256(f"holdout:{seed}:{sha}".encode()).hexdigest()


def holdout_split(
    items: Sequence[LabelledItem], *, fraction: float = 0.2, seed: int = 0, min_test: int = 2
) -> tuple[list[LabelledItem], list[LabelledItem]]:
    """(train, test), stratified by class, chosen by image hash: the same image always lands on the
    same side for a given seed, so a later retrain does not train on an earlier test item."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("test fraction must be within (0, 1)")
    train: list[LabelledItem] = []
    test: list[LabelledItem] = []
    for cls in CLASSES:
        group = sorted((i for i in items if i.label == cls), key=lambda i: _draw(seed, i.sha256))
        k = min(len(group) - 1, max(min_test, round(len(group) * fraction))) if len(group) > 1 else 0
        test += group[:k]
        train += group[k:]
    key: Callable[[LabelledItem], int] = lambda i: i.inspection_id  # noqa: E731
    return sorted(train, key=key), sorted(test, key=key)


def snapshot_hash(
    train: Sequence[LabelledItem], test: Sequence[LabelledItem], base_hash: str = "", marks_hash: str = ""
) -> str:
    h = hashlib.sha256()
    for split, group in (("train", train), ("test", test)):
        for i in sorted(group, key=lambda i: i.inspection_id):
            h.update(f"{split}:{i.inspection_id}:{i.sha256}:{i.label}\n".encode())
    h.update(f"base:{base_hash}\n".encode())
    if marks_hash:  # only with marks: snapshots without them keep the hash they always had
        h.update(f"marks:{marks_hash}\n".encode())
    return h.hexdigest()


# Store queries


def labelled_items(
    app: Pipeline, *, station: str | None = None, since: datetime | None = None
) -> list[LabelledItem]:
    """Items with a live human label (ordinary or blind audit) and a decodable stored image, one per
    image (the latest label wins), in inspection-id order."""
    with app.read() as session:
        rows = store.labelled_history(session, station=station, since=since)
    latest: dict[str, LabelledItem] = {}
    for r in rows:
        if r.image_width is None:
            continue  # undecodable: nothing to train on
        latest.pop(r.image_sha256, None)  # re-insert: dict order follows the latest label
        latest[r.image_sha256] = _item(r)
    return sorted(latest.values(), key=lambda i: i.inspection_id)


def _item(row: store.LabelledRow) -> LabelledItem:
    return LabelledItem(row.inspection_id, row.image_sha256, row.image_path, row.label, row.audit, row.station)


def _items_by_id(app: Pipeline, inspection_ids: Sequence[int]) -> list[LabelledItem]:
    with app.read() as session:
        rows = store.labelled_history(session, inspection_ids=inspection_ids)
    return [_item(r) for r in rows]


# Scoring held-out items


def _summarize_scores(app: Pipeline, scorer: Any, items: Sequence[LabelledItem], desc: str) -> dict[str, Any]:
    # torch-backed (evaluate imports the predictor): loaded only when items are scored.
    from inspection.vision.evaluate import ItemResult, summarize

    results: list[ItemResult] = []
    bar = tqdm(total=len(items), desc=desc, unit="img", file=sys.stderr, leave=False)
    for start in range(0, len(items), 16):
        chunk = items[start : start + 16]
        images: list[Any] = []
        good: list[LabelledItem] = []
        for it in chunk:
            try:
                images.append(read_image_file(app.resolve(it.path), max_pixels=app.settings.max_pixels))
                good.append(it)
            except ImageError as exc:
                results.append(ItemResult(it.path, int(it.label == "scratch"), None, str(exc), None))
        for it, scored in zip(good, scorer.score(images) if images else [], strict=True):
            pred = scored.prediction
            score = pred.score if pred.valid else None
            results.append(ItemResult(it.path, int(it.label == "scratch"), score, pred.error, None))
        bar.update(len(chunk))
    bar.close()
    summary = summarize(results)
    summary["errors"] = summary.get("errors", [])[:20]
    return summary


def score_items(app: Pipeline, *, model: str, inspection_ids: Sequence[int]) -> dict[str, Any]:
    """Evaluate model `model` (a directory under models_dir) on stored labelled items."""
    items = _items_by_id(app, inspection_ids)
    return _summarize_scores(app, app.scorer(model), items, f"evaluating {model}")


# Dataset on disk


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        try:
            dst.symlink_to(src.resolve())
        except OSError:
            shutil.copyfile(src, dst)


def _suffix(path: str) -> str:
    s = Path(path).suffix.lower()
    return s if _SUFFIX_RE.match(s) else ".img"


def write_links(app: Pipeline, items: Sequence[LabelledItem], root: Path) -> None:
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
    for it in items:
        _link(app.resolve(it.path), root / it.label / f"{it.sha256}{_suffix(it.path)}")


def write_mark_masks(app: Pipeline, items: Sequence[LabelledItem], root: Path) -> tuple[list[int], str]:
    """`root/masks/<sha256>.png` for the items trained as scratch whose labels came with marks; (their
    inspection ids, a hash of the masks for the snapshot)."""
    masks = marks_service.training_masks(app, labels={i.inspection_id: i.label for i in items})
    h = hashlib.sha256()
    done: list[int] = []
    for it in items:
        mask = masks.get(it.inspection_id)
        if mask is None:
            continue
        marks_service.save_mask(mask, root / "masks" / f"{it.sha256}.png")
        h.update(f"{it.inspection_id}:{hashlib.sha256(mask.tobytes()).hexdigest()}\n".encode())
        done.append(it.inspection_id)
    return done, h.hexdigest() if done else ""


def link_base(base: Path, root: Path) -> tuple[int, str]:
    """Add a base ImageFolder (its positive class 'scratch', every other class 'ok') with masks."""
    examples = list_imagefolder(base, positive="scratch")
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for e in examples:
        cls = "scratch" if e.label else "ok"
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"base_{e.cls}_{e.path.stem}")[:150]
        _link(e.path, root / cls / f"{stem}{_suffix(e.path.name)}")
        mask = base / "masks" / f"{e.path.stem}.png"
        if mask.is_file():
            _link(mask, root / "masks" / f"{stem}.png")
    return len(examples), data_hash(examples)


# The use case


@dataclass(frozen=True)
class RetrainResult:
    version: str
    path: Path
    n_train: int  # stored labels used for training (base images not counted)
    n_test: int
    n_base: int
    production_version: str
    candidate: dict[str, Any]
    production: dict[str, Any] | None
    data_hash: str
    seconds: float
    verdict: str
    notes: list[str] = field(default_factory=list)
    n_marked: int = 0  # training items whose inspectors' marks supervised the heatmap

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["path"] = str(self.path)
        return d


def _version_name(app: Pipeline) -> str:
    stamp = app.clock().strftime("%Y%m%d-%H%M%S")
    name, n = f"cand-{stamp}", 2
    while (app.settings.models_dir / name).exists():
        name, n = f"cand-{stamp}-{n}", n + 1
    return name


def _production_preprocess(app: Pipeline, production: str) -> PreprocessSpec | None:
    pre = read_artifact(app.settings.models_dir / production).preprocess
    try:
        return PreprocessSpec.from_json(pre) if pre is not None else None
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class _Snapshot:
    """The stored labels one retrain used, and the base data added to them."""

    train: list[LabelledItem]
    test: list[LabelledItem]
    station: str | None
    since: datetime | None
    base_data: Path | None
    n_base: int = 0
    base_hash: str = ""
    marked: tuple[int, ...] = ()  # training items with a mask from their marks
    marks_hash: str = ""

    @property
    def digest(self) -> str:
        return snapshot_hash(self.train, self.test, self.base_hash, self.marks_hash)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hash": self.digest,
            "train_ids": [i.inspection_id for i in self.train],
            "test_ids": [i.inspection_id for i in self.test],
            "n_train": len(self.train),
            "n_test": len(self.test),
            "n_base": self.n_base,
            "station": self.station,
            "since": self.since.isoformat() if self.since else None,
            "base_data": str(self.base_data) if self.base_data else None,
            "base_data_hash": self.base_hash,
            "marked_ids": list(self.marked),
            "n_marked": len(self.marked),
        }


def retrain(
    app: Pipeline,
    *,
    by: str,
    station: str | None = None,
    since: datetime | None = None,
    base_data: Path | None = None,
    epochs: int | None = None,
    min_per_class: int = MIN_PER_CLASS,
    test_fraction: float = 0.2,
    seed: int = 0,
    preprocess: PreprocessSpec | None = None,
    use_marks: bool = True,
    warm_start: bool = False,
    log: Callable[[str], None] = print,
) -> RetrainResult:
    """Train and register a candidate from stored labels. Raises NotEnoughLabels before any work
    when a class has fewer than `min_per_class` labels. `use_marks`: the inspectors' marks supervise
    the heatmap of the items they marked (off: every stored item learns from its label alone).
    `warm_start`: fine-tune production's weights (same network and preprocessing) instead of starting
    from ImageNet's. `epochs` None: core.schedule.default_epochs."""
    t0 = time.perf_counter()
    if epochs is not None and epochs < 1:
        raise ValueError("epochs must be >= 1")
    if base_data is not None and not base_data.is_dir():
        raise ValueError(f"--base-data {base_data} is not a folder")
    items = labelled_items(app, station=station, since=since)
    check_enough(items, min_per_class=min_per_class)
    train_items, test_items = holdout_split(items, fraction=test_fraction, seed=seed)
    production = current_state(app).production
    steps = tqdm(total=5, desc="retrain", unit="step", file=sys.stderr)

    app.settings.models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".retrain-", dir=app.settings.data_dir))
    version = _version_name(app)
    staging = app.settings.models_dir / f".tmp-{version}"
    try:
        steps.set_postfix_str("linking images")
        snap = _Snapshot(train_items, test_items, station, since, base_data)
        snap = _link_dataset(app, snap, work / "train", use_marks=use_marks)
        if snap.marked:
            log(f"{len(snap.marked)} marked scratch items supervise the heatmap")
        steps.update(1)
        steps.set_postfix_str("training")
        spec = preprocess or _production_preprocess(app, production)
        init = app.settings.models_dir / production if warm_start and production else None
        if epochs is None:
            epochs = default_epochs(len(snap.train) + snap.n_base, fine_tune=init is not None)
            log(f"{epochs} epochs ({'fine-tuning ' + production if init else 'from ImageNet'})")
        seconds = _train(app, work / "train", staging, version=version, spec=spec, epochs=epochs, seed=seed,
                         init_from=init, log=log)
        steps.update(1)
        cand, prod, notes = _evaluate_both(app, staging, production, test_items, steps)
        verdict = _verdict(cand, prod, production)
        heldout = {"n": len(test_items), "candidate": cand, "production": prod}
        meta: dict[str, Any] = {"heldout": heldout, "data": snap.to_dict(), "by": by, "production_version": production}
        meta |= {"verdict": verdict, "train_seconds": round(seconds, 1),
                 "warm_start_from": production if init else None}
        update_metrics(staging, {"heldout": cand, "retrain": meta})
        final = app.settings.models_dir / version
        os.replace(staging, final)  # registration is atomic: the directory appears complete
        steps.set_postfix_str("registered")
        steps.update(1)
        _record_registration(app, by=by, version=version, production=production, verdict=verdict, meta=meta, snap=snap)
    finally:
        steps.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    return RetrainResult(
        version=version,
        path=final,
        n_train=len(train_items),
        n_test=len(test_items),
        n_base=snap.n_base,
        production_version=production,
        candidate=cand,
        production=prod,
        data_hash=snap.digest,
        seconds=time.perf_counter() - t0,
        verdict=verdict,
        notes=notes,
        n_marked=len(snap.marked),
    )


def _link_dataset(app: Pipeline, snap: _Snapshot, data: Path, *, use_marks: bool) -> _Snapshot:
    """The training ImageFolder at `data`: the stored training labels (with their marks' masks) plus
    the base data, if any."""
    write_links(app, snap.train, data)
    if use_marks:
        marked, marks_hash = write_mark_masks(app, snap.train, data)
        snap = replace(snap, marked=tuple(marked), marks_hash=marks_hash)
    if snap.base_data is None:
        return snap
    n_base, base_hash = link_base(snap.base_data, data)
    return replace(snap, n_base=n_base, base_hash=base_hash)


def _train(
    app: Pipeline,
    data: Path,
    staging: Path,
    *,
    version: str,
    spec: PreprocessSpec | None,
    epochs: int,
    seed: int,
    init_from: Path | None = None,
    log: Callable[[str], None],
) -> float:
    """Train the candidate into `staging`; its training time in seconds."""
    # torch-backed: loaded only when a retrain actually runs.
    from inspection.vision.input_scale import TrainingInput, choose_input
    from inspection.vision.train import TrainConfig, train

    chosen = TrainingInput(spec) if spec is not None else choose_input(data, positive="scratch")
    config = TrainConfig(epochs=epochs, seed=seed, preprocess=chosen.preprocess, tile=chosen.tile,
                         orientations=chosen.orientations, select=chosen.select, threads=app.settings.threads,
                         init_from=init_from)
    return train(data, staging, positive="scratch", config=config, version=version, log=log).seconds


def _evaluate_both(
    app: Pipeline, staging: Path, production: str, test_items: Sequence[LabelledItem], steps: Any
) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """(candidate summary, production summary or None, notes) on the same held-out items."""
    # torch-backed: loaded only when a retrain actually runs.
    from inspection.vision.predictor import load_predictor

    steps.set_postfix_str("evaluating candidate")
    candidate = load_predictor(staging, threads=app.settings.threads)
    cand = _summarize_scores(app, candidate, test_items, "held-out: candidate")
    steps.update(1)
    steps.set_postfix_str("evaluating production")
    notes: list[str] = []
    prod: dict[str, Any] | None
    try:
        prod_scores = _summarize_scores(app, app.scorer(production), test_items, "held-out: production")
        prod = {"version": production, **prod_scores}
    except Exception as exc:  # no production artifact yet: the candidate stands alone
        prod = None
        notes.append(f"production model {production!r} could not be evaluated: {type(exc).__name__}: {exc}")
    steps.update(1)
    return cand, prod, notes


def _verdict(cand: dict[str, Any], prod: dict[str, Any] | None, production: str) -> str:
    if prod is None:
        return "no production model to compare with"
    problem = worse_than_production(cand, prod)
    if problem:
        return f"worse than production: {problem}"
    return f"not worse than production {production} on the same held-out items"


def _record_registration(
    app: Pipeline, *, by: str, version: str, production: str, verdict: str, meta: dict[str, Any], snap: _Snapshot
) -> None:
    cand, prod = meta["heldout"]["candidate"], meta["heldout"]["production"]
    detail = {
        "version": version,
        "production": production,
        "verdict": verdict,
        "candidate_auroc": cand.get("auroc"),
        "production_auroc": prod.get("auroc") if prod else None,
        "n_train": len(snap.train),
        "n_test": len(snap.test),
        "n_base": snap.n_base,
        "n_marked": len(snap.marked),
        "data_hash": snap.digest,
    }
    with app.write() as session:
        store.add_event(session, kind="model.registered", at=app.clock(), actor=by, station=snap.station, detail=detail)
