"""Safe decoding of untrusted image bytes (cameras, uploads) and cheap input metrics.

Order of checks, cheapest first, so that nothing big is ever allocated for a bad input:
1. format from the magic bytes (unknown, text, known-but-unsupported are refused);
2. width and height from the header only, checked against min_side and max_pixels
   (decompression bombs are refused before any pixel is decoded); 1 and 2 are
   `inspection.vision.formats`, the sniffer that upload ingest uses too;
3. completeness from the container structure (JPEG end-of-image after the scan, PNG IEND chunk);
4. one decode to 8-bit BGR (16-bit is scaled by >>8, grey and palette expanded, alpha dropped,
   CMYK converted), at 1/2, 1/4 or 1/8 resolution on request. JPEGs go through libjpeg-turbo via
   simplejpeg with strict=True: libjpeg only *warns* about corrupt entropy data (a file cut short with
   an end-of-image marker appended, random bytes spliced in) and fills the rest with grey, which
   OpenCV passes on silently; strict turns every such warning into an error. Damage libjpeg cannot
   see (a wrong block mean carried to the end of the image) is refused by its step (vision.jpeg_damage).
   EXIF orientation is then applied as OpenCV would. Other formats go through OpenCV, after Pillow has
   checked what OpenCV would pass silently: PNG chunk CRCs (bytes spliced into a PNG) and a full TIFF
   decode (libtiff in OpenCV decodes a damaged strip as garbage). WebP carries no checksum: its RIFF
   size must be the file's and every chunk must fit it (libwebp refuses a cut file itself, but decodes
   bytes spliced into a lossless stream as garbage); likewise BMP's file size and rows. Bytes overwritten
   in place decode as noise in every decoder (measured: scripts/fuzz_decode.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import struct
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from inspection.vision.formats import Header, ImageError, probe, sniff_format
from inspection.vision.jpeg_damage import BLOCK, dc_step

__all__ = [
    "ImageError",
    "ImageMetrics",
    "decode_image",
    "image_metrics",
    "image_size",
    "read_image_file",
    "sha256_hex",
    "sniff_format",
]

REDUCE_FACTORS = (1, 2, 4, 8)
# EXIF orientation (2-8) -> the transform that shows the photo upright; 1 needs none.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}
_METRICS_SIDE = 512  # metrics run on a copy at most this many px on its long side (speed, comparability)
_DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ImageMetrics:
    width: int
    height: int
    brightness: float  # mean grey level, 0-255
    contrast: float  # standard deviation of the grey levels
    sharpness: float  # variance of the Laplacian of the grey image (downscaled copy); higher = sharper
    # |mean R - mean G| + |mean B - mean G| in grey levels: 0 for a neutral (grey-balanced) frame; a
    # white-balance change or tinted light moves it. Channel means, not per-pixel differences, so a
    # colourful object does not read as a cast. 0 for a grey image.
    colour_cast: float = 0.0


# ----------------------------------------------------------------------------------------------
# header (no pixel decoding)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only, without decoding pixels; ImageError if unknown format.
    This is the stored size: decode_image applies EXIF orientation, which may swap the two."""
    header = probe(bytes(data) if not isinstance(data, bytes) else data)
    return header.width, header.height


# ----------------------------------------------------------------------------------------------
# checks and decoding


def _check_size(header: Header, max_pixels: int, min_side: int) -> None:
    w, h = header.width, header.height
    if w <= 0 or h <= 0:
        raise ImageError(f"corrupt {header.format} (header says {w}x{h})")
    if w * h > max_pixels:
        raise ImageError(
            f"image too large: {w}x{h} = {w * h / 1e6:.1f} Mpx (limit {max_pixels / 1e6:.1f} Mpx)"
        )
    if min(w, h) < min_side:
        raise ImageError(f"image too small: {w}x{h} (minimum {min_side}x{min_side})")


def _check_complete(header: Header, data: bytes) -> None:
    """Refuse visibly cut files: OpenCV may otherwise fill the missing part with grey."""
    if header.format == "JPEG":
        # Entropy-coded data cannot contain FF D9 (FF is stuffed as FF 00), so the end-of-image marker
        # must follow the first scan; trailing bytes after it (some cameras append data) are fine.
        if data.rfind(b"\xff\xd9", header.scan_offset) < 0:
            raise ImageError("truncated JPEG (corrupt: no end-of-image marker; the file was cut short)")
    elif header.format == "PNG":
        _check_png_chunks(data)
    elif header.format == "WebP":
        _check_webp_chunks(data)
    elif header.format == "BMP":
        _check_bmp_size(header, data)
    if header.format in ("PNG", "TIFF"):
        _check_with_pillow(header, data)


def _check_with_pillow(header: Header, data: bytes) -> None:
    """PNG: every chunk's CRC (Pillow's verify, no pixel decode). TIFF: one full decode by Pillow,
    which raises on a damaged strip where OpenCV's libtiff returns garbage pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns (e.g. corrupt EXIF) before it raises
            with Image.open(io.BytesIO(data)) as im:
                im.verify() if header.format == "PNG" else im.load()
    except UnidentifiedImageError:  # its message names a BytesIO object, nothing a person can use
        raise ImageError(f"corrupt {header.format} (its structure cannot be read)") from None
    except Exception as exc:  # Pillow raises SyntaxError, OSError, ValueError … for damaged files
        raise ImageError(f"corrupt {header.format}: {str(exc).strip() or type(exc).__name__}") from None


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


def _check_named_size(fmt: str, said: int, data: bytes) -> None:
    """A file size its header names (BMP, WebP) must be the file's: no checksum covers their data."""
    if said != len(data):
        raise ImageError(
            f"corrupt {fmt} (its header says {said} bytes, the file has {len(data)}: cut short or bytes spliced in)"
        )


def _check_bmp_size(header: Header, data: bytes) -> None:
    """The file size the header names (0: not given) must be the file's, and uncompressed rows must fit
    in it. BMP has no checksum: bytes inserted or deleted shear every row after them, and OpenCV decodes
    the sheared image without a word (scripts/fuzz_decode.py)."""
    said = int(struct.unpack_from("<I", data, 2)[0])
    if said:
        _check_named_size("BMP", said, data)
    dib = int(struct.unpack_from("<I", data, 14)[0])
    if dib == 12 and len(data) >= 26:  # OS/2 core header: always uncompressed
        bits, compression = int(struct.unpack_from("<H", data, 24)[0]), 0
    elif dib >= 40 and len(data) >= 34:
        bits, compression = int(struct.unpack_from("<H", data, 28)[0]), int(struct.unpack_from("<I", data, 30)[0])
    else:
        return  # a header OpenCV will refuse itself
    if compression in (0, 3):  # BI_RGB, BI_BITFIELDS: rows of whole 32-bit words
        rows_end = int(struct.unpack_from("<I", data, 10)[0]) + (header.width * bits + 31) // 32 * 4 * header.height
        if rows_end > len(data):
            raise ImageError("truncated BMP (its pixel rows run past the end of the file)")


def _check_webp_chunks(data: bytes) -> None:
    """The RIFF size (bytes after its 8-byte header) must be the file's, and the chunks must fill it
    exactly: 16 bytes spliced into a lossless WebP otherwise decode with ~30 % of the pixels wrong.
    Unlike JPEG (cameras append data after the end marker), nothing legitimately trails a WebP."""
    _check_named_size("WebP", int(struct.unpack_from("<I", data, 4)[0]) + 8, data)
    pos, has_image = 12, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise ImageError("corrupt WebP (a chunk header runs past the end of the file)")
        size = int(struct.unpack_from("<I", data, pos + 4)[0])
        has_image = has_image or data[pos : pos + 4] in (b"VP8 ", b"VP8L", b"ANMF")
        pos += 8 + size + (size & 1)  # chunks are padded to an even size
        if pos > len(data):
            raise ImageError("corrupt WebP (a chunk runs past the end of the file)")
    if not has_image:
        raise ImageError("corrupt WebP (no image data)")


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
    header = probe(data)
    _check_size(header, max_pixels, min_side)
    _check_complete(header, data)
    jpeg = header.format == "JPEG"
    image = _decode_jpeg(data, header, reduce) if jpeg else _decode_opencv(data, header)
    if image.ndim == 2:  # defensive: IMREAD_COLOR and colorspace="BGR" always give 3 channels
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.dtype != np.uint8 or image.shape[2] != 3:
        raise ImageError(f"unsupported {header.format} pixel format ({image.dtype}, shape {image.shape})")
    if reduce > 1 and not jpeg:
        h, w = image.shape[:2]
        size = (math.ceil(w / reduce), math.ceil(h / reduce))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def _decode_jpeg(data: bytes, header: Header, reduce: int) -> np.ndarray:
    """Strict libjpeg-turbo decode; DCT scaling to the smallest size at least ceil(side / reduce),
    which is exactly 1/reduce rounded up like OpenCV's IMREAD_REDUCED_COLOR_n."""
    try:
        image = simplejpeg.decode_jpeg(
            data,
            colorspace="BGR",
            min_width=math.ceil(header.width / reduce),
            min_height=math.ceil(header.height / reduce),
            strict=True,
        )
    except ValueError as exc:  # simplejpeg raises ValueError for every libjpeg error and warning
        raise ImageError(f"corrupt JPEG: {str(exc).strip() or 'cannot decode'}") from None
    # Damage libjpeg decodes silently; on the stored rows, before any rotation (the block grid's frame).
    # At 1/4 and 1/8 size a block is 2 and 1 px, too small to tell a step from an edge: not checked.
    found = dc_step(image, block=BLOCK // reduce)
    if found.is_damage:
        raise ImageError(
            f"corrupt JPEG (damaged image data: brightness or colour steps by a constant along row "
            f"{found.row * reduce} from the {found.side} side over {found.share:.0%} of the width)"
        )
    transform = _ORIENT.get(header.orientation)
    return image if transform is None else transform(image)


def _decode_opencv(data: bytes, header: Header) -> np.ndarray:
    try:
        with _quiet_opencv():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV raises for some malformed inputs instead of returning None
        detail = str(exc).strip().splitlines()[-1]
        raise ImageError(f"corrupt {header.format} (cannot decode: {detail})") from None
    if image is None or image.size == 0:
        raise ImageError(f"corrupt or unsupported {header.format} data (cannot decode)")
    return np.asarray(image)


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
    """Brightness, contrast, sharpness and colour cast of a decoded image (BGR, BGRA or grey, uint8)."""
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")
    height, width = image.shape[:2]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    cast = 0.0
    if image.ndim == 2:
        grey = image
    else:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        grey = cv2.cvtColor(image, code)
        b, g, r = (float(v) for v in cv2.mean(image)[:3])
        cast = abs(r - g) + abs(b - g)
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
        colour_cast=cast,
    )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def heatmap_png(heatmap: np.ndarray) -> bytes | None:
    """A heatmap in [0, 1] as an 8-bit grey PNG (1/255 steps are finer than any threshold we show);
    None for an empty, non-2-D or non-finite map, which is then simply not stored."""
    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2 or hm.size == 0 or not np.all(np.isfinite(hm)):
        return None
    ok, png = cv2.imencode(".png", np.round(np.clip(hm, 0.0, 1.0) * 255.0).astype(np.uint8))
    return png.tobytes() if ok else None
