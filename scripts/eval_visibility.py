"""Where a model's AUROC on a generated set is lost: on scratches the camera barely shows, or on look-alikes.

Each scratched image is rendered again with its scratches left out (`synth.render(draw_scratches=False)`:
the same scene, look-alikes and camera noise), so the difference is the scratch's own signal in the photo.
Its visibility is the largest difference within 2 px of the scratch mask, in grey levels, at half size (the
size the predictor decodes a 1920x1080 JPEG at). The model's AUROC is then printed with the faint positives
left out at rising floors (every negative kept), beside the negatives scored above 0.5. Then the misses (scratched
phones scored under 0.3) by the widest scratch's width at full size and by the glass's share of the frame, with
how many of them the camera shows plainly (15 grey levels or more).

    .venv/bin/python scripts/eval_visibility.py data/synth/test-varied-seed777 [--model models/baseline]
        [--plot docs/eval-visibility.png]

The folder is one `inspection synth` wrote (its manifest names seed, index and setup); scores come from the
same path as `inspection evaluate`. Prints the tables and one JSON line; `--plot` also draws them.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.core.metrics import auroc
from inspection.vision.dataset import list_imagefolder
from inspection.vision.evaluate import score_dataset
from inspection.vision.predictor import load_predictor
from inspection.vision.synth import render

FLOORS = (0, 3, 5, 8, 10, 15, 20)  # grey levels of a scratch's peak signal
MISSED = 0.3  # a scratched phone scored under this counts as missed in the breakdowns
VISIBLE = 15  # grey levels of peak signal: a scratch the camera shows plainly
SHARES = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)  # bins of the glass's share of the frame
NEAR_PX = 2  # how far from the drawn mask a scratch's signal counts (its anti-aliased edge, the blur)


def visibility(seed: int, index: int, *, size: tuple[int, int], setup: str) -> float:
    """The scratch's peak signal in the photo (grey levels, at half size), 0 when none was drawn."""
    drawn = render(seed, index, scratch=True, size=size, setup=setup)
    bare = render(seed, index, scratch=True, size=size, setup=setup, draw_scratches=False)
    diff = np.abs(drawn.image.astype(np.float32) - bare.image.astype(np.float32)).mean(axis=2)
    near = cv2.dilate(drawn.mask, np.ones((2 * NEAR_PX + 1,) * 2, np.uint8)) > 0
    half = (size[0] // 2, size[1] // 2)
    diff = cv2.resize(diff, half, interpolation=cv2.INTER_AREA)
    near = cv2.resize(near.astype(np.uint8), half, interpolation=cv2.INTER_NEAREST) > 0
    return float(diff[near].max()) if near.any() else 0.0


def widest(drawn: str) -> int:
    """The widest scratch in a manifest's `drawn` (e.g. "scratch:w2:len310:contrast45;dust"), px at full size."""
    return max(int(d.split(":")[1][1:]) for d in drawn.split(";") if d.startswith("scratch:"))


def glass_share(data: Path, row: dict[str, str]) -> float:
    glass = cv2.imread(str(data / row["glass_mask"]), cv2.IMREAD_GRAYSCALE)
    if glass is None:
        raise SystemExit(f"error: cannot read {data / row['glass_mask']}")
    return float(np.count_nonzero(glass)) / glass.size


def share_bin(share: float) -> int:
    """The index of the SHARES bin holding a glass share (the last bin includes 1.0)."""
    return min(bisect.bisect_right(SHARES, share), len(SHARES) - 1) - 1


@dataclass(frozen=True)
class Misses:
    group: str
    positives: int
    missed: int  # scored under MISSED
    missed_visible: int  # of those, the camera shows plainly (signal >= VISIBLE grey levels)

    def json(self, title: str) -> dict[str, object]:
        return {title: self.group, "positives": self.positives, "missed": self.missed,
                "missed_visible": self.missed_visible}  # fmt: skip


def misses(groups: dict[str, list[tuple[float, float]]], title: str) -> list[Misses]:
    """Print and return, per group of (signal, score) pairs, the scratched phones, how many of them score
    under MISSED, and how many of those misses the camera shows plainly."""
    out = []
    print(f"{title:>14} {'positives':>10} {'missed':>13} {f'of them >= {VISIBLE}':>14}")
    for name, pairs in groups.items():
        missed = [v for v, s in pairs if s < MISSED]
        row = Misses(name, len(pairs), len(missed), sum(v >= VISIBLE for v in missed))
        out.append(row)
        print(f"{name:>14} {row.positives:10d} {row.missed:6d} ({row.missed / max(1, row.positives):4.0%}) "
              f"{row.missed_visible:14d}")
    return out


def plot(table: list[dict[str, float]], widths: list[Misses], out: Path) -> None:
    """AUROC by the positives' signal floor, beside the miss rate by the widest scratch."""
    import matplotlib  # heavy: only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot([r["signal_at_least"] for r in table], [r["auroc"] for r in table], "o-")
    left.axhline(0.995, ls=":", color="grey", label="issue 9's target")
    left.set_xlabel("positives kept: scratch peak signal >= (grey levels)")
    left.set_ylabel("AUROC")
    left.legend(fontsize=8)
    names = [r.group for r in widths]
    rate = [r.missed / max(1, r.positives) for r in widths]
    plain = [r.missed_visible / max(1, r.positives) for r in widths]
    right.bar(names, rate, label=f"missed (score < {MISSED})")
    right.bar(names, plain, label=f"of them shown plainly (>= {VISIBLE} levels)")
    right.set_xlabel("widest scratch, px at full size")
    right.set_ylabel("share of scratched phones")
    right.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a folder `inspection synth` wrote")
    ap.add_argument("--model", type=Path, default=Path("models/baseline"))
    ap.add_argument("--plot", type=Path, help="also draw the AUROC and miss tables into this PNG")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = score_dataset(load_predictor(args.model), args.data, list_imagefolder(args.data, positive="scratch"))
    rows = {r["file"]: r for r in csv.DictReader((args.data / "manifest.csv").open())}
    negatives, positives = [], []
    by_width: dict[int, list[tuple[float, float]]] = {}  # widest scratch, px -> (signal, score)
    by_share: dict[int, list[tuple[float, float]]] = {}  # SHARES bin -> (signal, score)
    for item in results:
        if item.score is None:  # not judged (no phone found): no score to rank
            continue
        row = rows[Path(item.path).relative_to(args.data).as_posix()]
        if not item.label:
            negatives.append(item.score)
            continue
        size = (int(row["width"]), int(row["height"]))
        signal = visibility(int(row["seed"]), int(row["index"]), size=size, setup=row["setup"])
        positives.append((signal, item.score))
        by_width.setdefault(widest(row["drawn"]), []).append((signal, item.score))
        by_share.setdefault(share_bin(glass_share(args.data, row)), []).append((signal, item.score))
    neg = np.array(negatives)
    table = []
    print(f"{'signal >=':>9} {'positives':>10} {'AUROC':>7}")
    for floor in FLOORS:
        kept = np.array([s for v, s in positives if v >= floor])
        value = auroc(np.r_[kept, neg], np.r_[np.ones(len(kept)), np.zeros(len(neg))])
        table.append({"signal_at_least": floor, "positives": len(kept), "auroc": round(value, 4)})
        print(f"{floor:9d} {len(kept):10d} {value:7.4f}")
    widths = misses({f"{w} px": by_width[w] for w in sorted(by_width)}, "widest scratch")
    shares = misses({f"{SHARES[i]:.0%}-{SHARES[i + 1]:.0%}": by_share[i] for i in sorted(by_share)}, "glass share")
    signals = np.array([v for v, _ in positives])
    report = {"data": str(args.data), "model": str(args.model), "positives": len(positives),
              "negatives": len(negatives), "signal_quantiles_5_10_25_50": np.percentile(signals, [5, 10, 25, 50])
              .round(1).tolist(), "negatives_over_0.5": int((neg > 0.5).sum()), "by_signal": table,
              "missed_by_width": [m.json("widest scratch") for m in widths],
              "missed_by_glass_share": [m.json("glass share") for m in shares],
              "seconds": round(time.perf_counter() - t0)}
    print(json.dumps(report))
    if args.plot:
        plot(table, widths, args.plot)


if __name__ == "__main__":
    main()
