"""Bad and unusual image files, made on the spot: what cameras and people actually send."""

from __future__ import annotations

import io
import random
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


# The damage a file suffers between a camera and us: bytes overwritten, inserted, deleted, the file cut,
# a length or size field smashed to an extreme, a run of its own bytes repeated elsewhere.
_EXTREMES = (0, 1, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """1-8 random damages to `data`; (damaged bytes, the kinds applied, e.g. "overwrite+cut")."""
    out, kinds = bytearray(data), []
    for _ in range(rng.randint(1, 8)):
        pos, roll = rng.randrange(len(out)), rng.random()
        if roll < 0.4:
            out[pos], kind = rng.randrange(256), "overwrite"
        elif roll < 0.55:
            out[pos:pos] = rng.randbytes(rng.randint(1, 16))
            kind = "insert"
        elif roll < 0.7:
            del out[pos : pos + rng.randint(1, 64)]
            kind = "delete"
        elif roll < 0.8:
            del out[pos:]
            kind = "cut"
        elif roll < 0.9:
            out[pos : pos + 4] = rng.choice(_EXTREMES).to_bytes(4, rng.choice(("big", "little")))
            kind = "smash"
        else:
            src = rng.randrange(len(out))
            out[pos:pos] = out[src : src + rng.randint(1, 64)]
            kind = "repeat"
        kinds.append(kind)
        if not out:
            out = bytearray(b"\x00")
    return bytes(out), "+".join(kinds)


def encodings(image: np.ndarray) -> dict[str, bytes]:
    """The image in every accepted format and the variants cameras write (progressive JPEG, lossy and
    lossless WebP)."""
    def enc(ext: str, *params: int) -> bytes:
        ok, buf = cv2.imencode(ext, image, list(params))
        assert ok
        return buf.tobytes()

    return {
        "jpeg": enc(".jpg", cv2.IMWRITE_JPEG_QUALITY, 90),
        "jpeg-progressive": enc(".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "png": enc(".png"),
        "bmp": enc(".bmp"),
        "tiff": enc(".tiff"),
        "webp-lossy": enc(".webp", cv2.IMWRITE_WEBP_QUALITY, 90),
        "webp-lossless": enc(".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
    }
