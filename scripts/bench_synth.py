"""Synthetic-image generation speed: renders, encodes and writes N images (JPEG + mask PNG + manifest)
into a temporary folder and prints images/s.

    .venv/bin/python scripts/bench_synth.py --count 100 --size 1920x1080 --workers 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from inspection.vision import synth


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=_size, default=(1920, 1080), help="WxH, default 1920x1080")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    # Render only (no encoding or disk): where the time goes.
    n_render = min(args.count, 30)
    start = time.perf_counter()
    for i in range(n_render):
        synth.render(args.seed, i, scratch=i % 2 == 0, size=args.size)
    render_rate = n_render / (time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        report = synth.generate(
            Path(tmp) / "synth",
            count=args.count,
            seed=args.seed,
            size=args.size,
            workers=args.workers,
            progress=False,
        )
    w, h = args.size
    print(f"render only : {render_rate:6.1f} images/s ({n_render} images at {w}x{h})")
    print(
        f"generate    : {report.images_per_second:6.1f} images/s ({report.count} images at {w}x{h}, "
        f"workers={args.workers}, JPEG q{synth.JPEG_QUALITY} + mask PNG written, {report.seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
