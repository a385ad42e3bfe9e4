"""JPEG decode speed: OpenCV (libjpeg, warnings ignored) against simplejpeg strict (libjpeg-turbo,
warnings as errors), full and half size, on rendered 1920x1080 phone photos (issue 12, section 1).

    .venv/bin/python scripts/bench_decode.py --n 40

Prints ms/image per decoder, single thread, after one warm-up pass.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np
import simplejpeg

from inspection.vision.images import decode_image
from inspection.vision.synth import render


def _photos(count: int, quality: int) -> list[bytes]:
    """`count` distinct JPEGs of rendered 1920x1080 scenes (half with scratches)."""
    files = []
    for index in range(count):
        image = render(7, index, scratch=index % 2 == 0, size=(1920, 1080)).image
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        files.append(buf.tobytes())
    return files


def _opencv(flag: int) -> Callable[[bytes], np.ndarray]:
    def decode(data: bytes) -> np.ndarray:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        assert image is not None
        return np.asarray(image)

    return decode


def _strict(reduce: int) -> Callable[[bytes], np.ndarray]:
    def decode(data: bytes) -> np.ndarray:
        return simplejpeg.decode_jpeg(
            data, colorspace="BGR", min_width=1920 // reduce, min_height=1080 // reduce, strict=True
        )

    return decode


DECODERS: dict[str, Callable[[bytes], np.ndarray]] = {
    "opencv full (IMREAD_COLOR)": _opencv(cv2.IMREAD_COLOR),
    "opencv half (IMREAD_REDUCED_COLOR_2)": _opencv(cv2.IMREAD_REDUCED_COLOR_2),
    "simplejpeg strict full": _strict(1),
    "simplejpeg strict half": _strict(2),
    "decode_image reduce=1 (all checks)": lambda data: decode_image(data),
    "decode_image reduce=2 (all checks)": lambda data: decode_image(data, reduce=2),
}


def _time(decode: Callable[[bytes], np.ndarray], files: list[bytes], repeats: int) -> float:
    """Best of `repeats` passes over all files, in ms per image."""
    for data in files:  # warm-up: page in the library, allocate once
        decode(data)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for data in files:
            decode(data)
        best = min(best, time.perf_counter() - start)
    return best * 1000.0 / len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="distinct images to decode")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality of the generated files")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best one is reported")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    files = _photos(args.n, args.quality)
    size_kb = sum(map(len, files)) / len(files) / 1024
    print(f"{args.n} JPEGs 1920x1080, quality {args.quality}, mean {size_kb:.0f} KB; best of {args.repeats}")
    for name, decode in DECODERS.items():
        print(f"{name:40s} {_time(decode, files, args.repeats):7.2f} ms/image")


if __name__ == "__main__":
    main()
