"""Bad and unusual image files, made on the spot: what cameras and people actually send."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

# file name -> what must happen: "error: <substring>" or "ok" (decoded and judged)
CASES: dict[str, str] = {
    "zero.jpg": "error: empty",
    "truncated.jpg": "error: truncated",
    "text.png": "error: not an image",
    "tiny.png": "error: too small",
    "bomb.png": "error: too large",
    "deep16.png": "ok",
    "grey.png": "ok",
    "rgba.png": "ok",
    "cmyk.jpg": "ok",
}


def png_bomb_header(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write_cases(folder: Path, phone_bgr: np.ndarray) -> dict[str, Path]:
    """Write every case; the 'ok' ones show the given phone photo in an awkward encoding."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg = cv2.imencode(".jpg", phone_bgr)[1].tobytes()
    rgb = cv2.cvtColor(phone_bgr, cv2.COLOR_BGR2RGB)
    blobs: dict[str, bytes] = {
        "zero.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "text.png": b"this is not an image, it is a text file\n" * 20,
        "tiny.png": cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(),
        "bomb.png": png_bomb_header(),
        "deep16.png": cv2.imencode(".png", phone_bgr.astype(np.uint16) * 257)[1].tobytes(),
        "grey.png": cv2.imencode(".png", cv2.cvtColor(phone_bgr, cv2.COLOR_BGR2GRAY))[1].tobytes(),
        "rgba.png": cv2.imencode(".png", cv2.cvtColor(phone_bgr, cv2.COLOR_BGR2BGRA))[1].tobytes(),
    }
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG", quality=95)
    blobs["cmyk.jpg"] = buf.getvalue()
    paths = {}
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
        paths[name] = folder / name
    return paths
