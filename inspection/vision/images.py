"""Safe decoding of untrusted image bytes (cameras, uploads) and cheap input metrics.

Order of checks, cheapest first, so that nothing big is ever allocated for a bad input:
1. format from the magic bytes (unknown, text, known-but-unsupported are refused);
2. width and height from the header only, checked against min_side and max_pixels
   (decompression bombs are refused before any pixel is decoded);
3. completeness from the container structure (JPEG end-of-image after the scan, PNG IEND chunk);
4. one OpenCV decode to 8-bit BGR (16-bit is scaled by >>8, grey and palette expanded, alpha dropped,
   CMYK converted), at 1/2, 1/4 or 1/8 resolution on request.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REDUCE_FACTORS = (1, 2, 4, 8)
_JPEG_REDUCED = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_METRICS_SIDE = 512  # metrics run on a copy at most this many px on its long side (speed, comparability)
_DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024


class ImageError(ValueError):
    """Clear, human-readable reason an image cannot be judged (e.g. 'empty file', 'truncated JPEG',
    'not an image (looks like text)', 'image too small: 1x1 (minimum 32x32)',
    'image too large: 30000x30000 = 900.0 Mpx (limit 50.0 Mpx)')."""


@dataclass(frozen=True)
class _Header:
    format: str  # "JPEG", "PNG", "GIF", "BMP", "TIFF", "WebP"
    width: int
    height: int
    scan_offset: int = -1  # JPEG: offset of the first start-of-scan marker


@dataclass(frozen=True)
class ImageMetrics:
    width: int
    height: int
    brightness: float  # mean grey level, 0-255
    contrast: float  # standard deviation of the grey levels
    sharpness: float  # variance of the Laplacian of the grey image (downscaled copy); higher = sharper


# ----------------------------------------------------------------------------------------------
# header parsing (no pixel decoding)

# Formats that are images but that we do not accept: a named refusal beats "unknown format".
_UNSUPPORTED = (
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"8BPS", "Photoshop PSD"),
    (b"\x76\x2f\x31\x01", "OpenEXR"),
)


def _u16be(data: bytes, pos: int) -> int:
    return int(struct.unpack_from(">H", data, pos)[0])


def _need(data: bytes, size: int, fmt: str) -> None:
    if len(data) < size:
        raise ImageError(f"truncated {fmt} (header incomplete, {len(data)} bytes)")


def _jpeg_header(data: bytes) -> _Header:
    """Walk the marker segments up to the first start-of-scan; the frame header (SOFn) gives the size."""
    pos, size = 2, None
    while True:
        _need(data, pos + 4, "JPEG")
        if data[pos] != 0xFF:
            raise ImageError(f"corrupt JPEG (bad marker at byte {pos})")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        if marker == 0xD9:
            raise ImageError("corrupt JPEG (ends before any image data)")
        length = _u16be(data, pos + 2)
        if length < 2:
            raise ImageError(f"corrupt JPEG (bad segment length at byte {pos})")
        # SOF0-SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            _need(data, pos + 9, "JPEG")
            size = (_u16be(data, pos + 7), _u16be(data, pos + 5))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise ImageError("corrupt JPEG (no frame header before the image data)")
            return _Header("JPEG", size[0], size[1], scan_offset=pos)
        pos += 2 + length


def _png_header(data: bytes) -> _Header:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise ImageError("corrupt PNG (first chunk is not IHDR)")
    width, height = struct.unpack_from(">II", data, 16)
    return _Header("PNG", int(width), int(height))


def _gif_header(data: bytes) -> _Header:
    _need(data, 10, "GIF")
    width, height = struct.unpack_from("<HH", data, 6)
    return _Header("GIF", int(width), int(height))


def _bmp_header(data: bytes) -> _Header:
    _need(data, 26, "BMP")
    dib = int(struct.unpack_from("<I", data, 14)[0])
    if dib == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return _Header("BMP", abs(int(width)), abs(int(height)))  # negative height = top-down rows


def _webp_header(data: bytes) -> _Header:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack_from("<HH", data, 26)
        return _Header("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":  # lossless: 14-bit (size - 1) fields packed after the 0x2F signature
        bits = int(struct.unpack_from("<I", data, 21)[0])
        return _Header("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1)
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return _Header("WebP", w, h)
    raise ImageError(f"corrupt WebP (unknown chunk {chunk!r})")


def _tiff_header(data: bytes) -> _Header:
    """First image file directory: tags 256 (ImageWidth) and 257 (ImageLength)."""
    _need(data, 8, "TIFF")
    end = "<" if data[:2] == b"II" else ">"
    ifd = int(struct.unpack_from(end + "I", data, 4)[0])
    _need(data, ifd + 2, "TIFF")
    entries = int(struct.unpack_from(end + "H", data, ifd)[0])
    _need(data, ifd + 2 + 12 * entries, "TIFF")
    found: dict[int, int] = {}
    for i in range(entries):
        tag, typ = struct.unpack_from(end + "HH", data, ifd + 2 + 12 * i)
        if tag in (256, 257):
            fmt = end + ("H" if typ == 3 else "I")  # SHORT or LONG, stored in the value field
            found[tag] = int(struct.unpack_from(fmt, data, ifd + 2 + 12 * i + 8)[0])
    if 256 not in found or 257 not in found:
        raise ImageError("corrupt TIFF (no image size in the first directory)")
    return _Header("TIFF", found[256], found[257])


def _looks_like_text(data: bytes) -> bool:
    head = data[:1024]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut at the end is fine
            return False
        text = head[: exc.start].decode("utf-8")
    if not text:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


def _probe(data: bytes) -> _Header:
    if len(data) == 0:
        raise ImageError("empty file")
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_header(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_header(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_header(data)
    if data[:2] == b"BM":
        return _bmp_header(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_header(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_header(data)
    for magic, name in _UNSUPPORTED:
        if data.startswith(magic):
            raise ImageError(f"unsupported image format: {name}")
    if data[4:8] == b"ftyp":  # ISO media: HEIC/HEIF/AVIF photos
        brand = data[8:12].decode("ascii", "replace").strip()
        raise ImageError(f"unsupported image format: HEIF/AVIF (brand {brand!r}); send JPEG or PNG")
    if _looks_like_text(data):
        if data.lstrip()[:5].lower() in (b"<?xml", b"<svg ", b"<svg>"):
            raise ImageError("not a raster image (looks like SVG/XML text)")
        raise ImageError("not an image (looks like text)")
    raise ImageError(f"not an image (unknown format, starts with {data[:8].hex(' ')})")


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only, without decoding pixels; ImageError if unknown format.
    This is the stored size: decode_image applies EXIF orientation, which may swap the two."""
    header = _probe(bytes(data) if not isinstance(data, bytes) else data)
    return header.width, header.height


# ----------------------------------------------------------------------------------------------
# checks and decoding


def _check_size(header: _Header, max_pixels: int, min_side: int) -> None:
    w, h = header.width, header.height
    if w <= 0 or h <= 0:
        raise ImageError(f"corrupt {header.format} (header says {w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"image too large: {w}x{h} = {w * h / 1e6:.1f} Mpx (limit {max_pixels / 1e6:.1f} Mpx)"
        )
    if min(w, h) < min_side:
        raise ImageError(f"image too small: {w}x{h} (minimum {min_side}x{min_side})")


def _check_complete(header: _Header, data: bytes) -> None:
    """Refuse visibly cut files: OpenCV may otherwise fill the missing part with grey."""
    if header.format == "JPEG":
        # Entropy-coded data cannot contain FF D9 (FF is stuffed as FF 00), so the end-of-image marker
        # must follow the first scan; trailing bytes after it (some cameras append data) are fine.
        if data.rfind(b"\xff\xd9", header.scan_offset) < 0:
            raise ImageError("truncated JPEG (no end-of-image marker; the file was cut short)")
    elif header.format == "PNG":
        _check_png_chunks(data)


def _check_png_chunks(data: bytes) -> None:
    """Walk the chunk list (lengths only, no CRC) to the IEND chunk."""
    pos, seen_data = 8, False
    while True:
        if pos + 8 > len(data):
            raise ImageError("truncated PNG (the file was cut short)")
        length = int(struct.unpack_from(">I", data, pos)[0])
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            raise ImageError("truncated PNG (the file was cut short)")
        seen_data = seen_data or kind == b"IDAT"
        if kind == b"IEND":
            if not seen_data:
                raise ImageError("corrupt PNG (no image data)")
            return
        pos += 12 + length


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Mute OpenCV's own log lines (e.g. TIFF warnings) during one decode; restores the level after.
    Messages that libpng/libjpeg print themselves cannot be muted this way; the structural checks
    above keep the common cases (cut files) from reaching them."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def decode_image(
    data: bytes, *, max_pixels: int = 50_000_000, min_side: int = 32, reduce: int = 1
) -> np.ndarray:
    """Decode untrusted bytes to an HxWx3 uint8 BGR, C-contiguous array, or raise ImageError.

    reduce in {1, 2, 4, 8} decodes at 1/reduce resolution (JPEG: DCT scaling inside the decoder,
    others: full decode then INTER_AREA); sizes round up like libjpeg's. Limits apply to the
    original size."""
    if reduce not in REDUCE_FACTORS:
        raise ValueError(f"reduce must be one of {REDUCE_FACTORS}, got {reduce}")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data) if not isinstance(data, bytes) else data
    header = _probe(data)
    _check_size(header, max_pixels, min_side)
    _check_complete(header, data)
    jpeg = header.format == "JPEG"
    flag = _JPEG_REDUCED[reduce] if jpeg else cv2.IMREAD_COLOR
    try:
        with _quiet_opencv():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    except cv2.error as exc:  # OpenCV raises for some malformed inputs instead of returning None
        detail = str(exc).strip().splitlines()[-1]
        raise ImageError(f"corrupt {header.format} (cannot decode: {detail})") from None
    if image is None or image.size == 0:
        raise ImageError(f"corrupt or unsupported {header.format} data (cannot decode)")
    if image.ndim == 2:  # defensive: IMREAD_COLOR always gives 3 channels
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.dtype != np.uint8 or image.shape[2] != 3:
        raise ImageError(f"unsupported {header.format} pixel format ({image.dtype}, shape {image.shape})")
    if reduce > 1 and not jpeg:
        h, w = image.shape[:2]
        size = (math.ceil(w / reduce), math.ceil(h / reduce))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def read_image_file(
    path: Path,
    *,
    max_pixels: int = 50_000_000,
    min_side: int = 32,
    reduce: int = 1,
    max_bytes: int = _DEFAULT_MAX_FILE_BYTES,
) -> np.ndarray:
    """Read a file and decode it like decode_image; a missing, unreadable, special or oversized file
    (more than max_bytes) is an ImageError too."""
    path = Path(path)
    try:
        if not path.is_file():
            reason = "not found" if not path.exists() else "not a regular file"
            raise ImageError(f"cannot read {path}: {reason}")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"file too large: {size / 1e6:.1f} MB (limit {max_bytes / 1e6:.1f} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_image(data, max_pixels=max_pixels, min_side=min_side, reduce=reduce)


# ----------------------------------------------------------------------------------------------
# metrics


def image_metrics(image: np.ndarray) -> ImageMetrics:
    """Brightness, contrast and sharpness of a decoded image (BGR, BGRA or grey, uint8)."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    height, width = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        grey = image
    else:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        grey = cv2.cvtColor(image, code)
    scale = _METRICS_SIDE / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    mean, std = cv2.meanStdDev(grey)
    _, lap_std = cv2.meanStdDev(cv2.Laplacian(grey, cv2.CV_32F))
    return ImageMetrics(
        width=int(width),
        height=int(height),
        brightness=float(mean[0, 0]),
        contrast=float(std[0, 0]),
        sharpness=float(lap_std[0, 0]) ** 2,
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
