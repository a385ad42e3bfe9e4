"""What happens to damaged files, per accepted format: refused with a reason, or decoded, and if decoded
how far the pixels are from the intact file's. The damage (tests/bad_images.mutate): bytes overwritten,
inserted or deleted, the file cut, size fields smashed, runs repeated.

    .venv/bin/python scripts/fuzz_decode.py [--n 400] [--size 640x360] [--seed 0] [--model models/baseline]

Nothing may escape decode_image except ImageError (any other exception is counted and printed: it would
fail a request instead of sending the item to a person). A damaged file that decodes is "garbled" when
over 1 % of its pixels differ from the intact decode by more than 20 grey levels: damage the container
cannot reveal (BMP has no checksum at all; JPEG and WebP none over the pixel data), which reaches the
model. With --model, every damaged file that decodes is scored as ingest scores it, and those inside the
domain gate (a valid score and no gate failure: an automatic decision is allowed) are counted, garbled or
close. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inspection.core.scoring import Scorer  # noqa: E402
from inspection.vision.images import ImageError, decode_image  # noqa: E402
from inspection.vision.synth import render  # noqa: E402
from tests.bad_images import encodings, mutate  # noqa: E402

GARBLED_SHARE = 0.01  # of the pixels
GARBLED_LEVELS = 20  # grey levels, mean over the channels


def outcome(damaged: bytes, intact: np.ndarray) -> tuple[str, np.ndarray | None]:
    """(refused | identical | garbled | close | other: an exception other than ImageError, the pixels)."""
    try:
        image = decode_image(damaged, min_side=8)
    except ImageError:
        return "refused", None
    except Exception as exc:  # the one thing that must never happen
        print(f"  unexpected {type(exc).__name__}: {exc}", flush=True)
        return "other", None
    if image.shape != intact.shape:
        return "garbled", image
    if np.array_equal(image, intact):
        return "identical", image
    off = np.abs(image.astype(np.int16) - intact.astype(np.int16)).mean(axis=2) > GARBLED_LEVELS
    return ("garbled" if off.mean() > GARBLED_SHARE else "close"), image


def gate_passes(scorer: Scorer | None, image: np.ndarray | None) -> bool:
    """Whether the model may decide this image on its own: a valid score and no domain-gate failure."""
    if scorer is None or image is None:
        return False
    scored = scorer.score([image])[0]
    return scored.prediction.valid and not scored.gate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=400, help="damaged files per format")
    ap.add_argument("--size", default="640x360", help="WxH of the phone photo that is encoded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, default=None, help="score the decoded ones (e.g. models/baseline)")
    args = ap.parse_args()
    scorer = None
    if args.model is not None:
        from inspection.vision.predictor import load_predictor  # heavy: only with --model

        scorer = load_predictor(args.model)
    w, h = (int(v) for v in args.size.lower().split("x"))
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # libtiff and libpng still print
    photo = render(args.seed, 0, scratch=True, size=(w, h)).image
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    kinds = ("refused", "identical", "close", "garbled", "other")
    rows: dict[str, Counter[str]] = {}
    for name, data in encodings(photo).items():
        intact = decode_image(data)
        counts: Counter[str] = Counter()
        for _ in range(args.n):
            kind, image = outcome(mutate(data, rng)[0], intact)
            counts[kind] += 1
            if kind in ("garbled", "close") and gate_passes(scorer, image):
                counts[f"{kind} inside the gate"] += 1
        rows[name] = counts
        extra = "" if scorer is None else (
            f"  | inside the gate: garbled {counts['garbled inside the gate']}, close {counts['close inside the gate']}"
            f" (intact: {'inside' if gate_passes(scorer, intact) else 'stopped'})")  # fmt: skip
        print(f"{name:<17} {len(data) / 1e3:7.1f} kB  " + "  ".join(f"{k} {counts[k]:4d}" for k in kinds) + extra,
              flush=True)  # fmt: skip
    total = sum(rows.values(), Counter())
    n = sum(total[k] for k in kinds)
    print(f"{n} damaged files in {time.perf_counter() - t0:.0f} s: refused {total['refused'] / n:.1%}, "
          f"garbled but decoded {total['garbled'] / n:.1%}, unexpected exceptions {total['other']}"
          + ("" if scorer is None else f"; garbled inside the gate {total['garbled inside the gate']}"))  # fmt: skip
    print(json.dumps({"n_per_format": args.n, "size": [w, h], "seed": args.seed,
                      "formats": {k: dict(v) for k, v in rows.items()}, "unexpected": total["other"]}))  # fmt: skip


if __name__ == "__main__":
    main()
