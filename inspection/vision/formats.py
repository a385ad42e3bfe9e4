"""Image formats from their magic bytes and sizes from their headers: no pixel decoding, no OpenCV.

The one place that decides which formats are accepted (JPEG, PNG, BMP, TIFF, WebP). Every path uses
it: `images.decode_image` (CLI, training, prediction) through `probe`, and upload ingest through
`sniff_format`/`refusal`, so a file cannot decode in one path and be refused in another. GIF is
refused by both with the same words (OpenCV would decode one frame, but cameras never send GIF and
the HTTP API never accepted it). Kept free of cv2 so services can sniff an upload without OpenCV.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

ACCEPTED = ("JPEG", "PNG", "BMP", "TIFF", "WebP")
NOT_SUPPORTED = f"not a supported image type ({', '.join(ACCEPTED)})"
GIF_REFUSED = f"GIF is {NOT_SUPPORTED}"
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp", "TIFF": "tif", "WebP": "webp"}
_GIF_MAGIC = (b"GIF87a", b"GIF89a")

__all__ = ["ACCEPTED", "NOT_SUPPORTED", "Header", "ImageError", "format_of", "probe", "refusal", "sniff_format"]


class ImageError(ValueError):
    """Clear, human-readable reason an image cannot be judged (e.g. 'empty file', 'truncated JPEG',
    'not an image (looks like text)', 'image too small: 1x1 (minimum 32x32)',
    'image too large: 30000x30000 = 900.0 Mpx (limit 50.0 Mpx)')."""


@dataclass(frozen=True)
class Header:
    """What the header says, before any pixel is decoded."""

    format: str  # one of ACCEPTED
    width: int
    height: int
    scan_offset: int = -1  # JPEG: offset of the first start-of-scan marker
    orientation: int = 1  # JPEG: EXIF orientation tag (1-8; 1 = as stored), applied after decoding



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


def _exif_orientation(segment: bytes) -> int:
    """The orientation tag (0x0112) of IFD0 in an APP1 Exif payload (after b"Exif\\0\\0"), 1 when absent
    or malformed: a broken EXIF block must not refuse an otherwise good photo (OpenCV ignores it too)."""
    order = {b"II": "<", b"MM": ">"}.get(segment[:2])
    if order is None or len(segment) < 8:
        return 1
    ifd = int(struct.unpack_from(order + "I", segment, 4)[0])
    if ifd + 2 > len(segment):
        return 1
    count = int(struct.unpack_from(order + "H", segment, ifd)[0])
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(segment) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", segment, entry)
        if tag == 0x0112 and kind == 3:  # SHORT
            value = int(struct.unpack_from(order + "H", segment, entry + 8)[0])
            return value if 1 <= value <= 8 else 1
    return 1


def _jpeg_header(data: bytes) -> Header:
    """Walk the marker segments up to the first start-of-scan; the frame header (SOFn) gives the size,
    an APP1 Exif segment the orientation."""
    pos, size, orientation = 2, None, 1
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
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[pos + 10 : pos + 2 + length])
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise ImageError("corrupt JPEG (no frame header before the image data)")
            return Header("JPEG", size[0], size[1], scan_offset=pos, orientation=orientation)
        pos += 2 + length


def _png_header(data: bytes) -> Header:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise ImageError("corrupt PNG (first chunk is not IHDR)")
    width, height = struct.unpack_from(">II", data, 16)
    return Header("PNG", int(width), int(height))


def _bmp_header(data: bytes) -> Header:
    _need(data, 26, "BMP")
    dib = int(struct.unpack_from("<I", data, 14)[0])
    if dib == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return Header("BMP", abs(int(width)), abs(int(height)))  # negative height = top-down rows


def _webp_header(data: bytes) -> Header:
    _need(data, 30, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and start code
        width, height = struct.unpack_from("<HH", data, 26)
        return Header("WebP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":  # lossless: 14-bit (size - 1) fields packed after the 0x2F signature
        bits = int(struct.unpack_from("<I", data, 21)[0])
        return Header("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":  # extended: 24-bit (canvas size - 1)
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return Header("WebP", w, h)
    raise ImageError(f"corrupt WebP (unknown chunk {chunk!r})")


def _tiff_header(data: bytes) -> Header:
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
    return Header("TIFF", found[256], found[257])


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


def format_of(data: bytes) -> str | None:
    """The accepted format the magic bytes name ("JPEG", "PNG", "BMP", "TIFF", "WebP"), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    return None


def sniff_format(data: bytes) -> str | None:
    """File extension ("jpg", "png", "bmp", "tif", "webp") of an accepted format, from the magic bytes
    only; None for anything else (GIF included). Ingest names stored files with it and answers 415
    for None; a recognised format whose header or pixels are broken is `probe`'s / decoding's job."""
    fmt = format_of(data)
    return _EXTENSIONS[fmt] if fmt is not None else None


def refusal(data: bytes) -> str:
    """Why bytes that `sniff_format` does not accept are refused: the same words as `probe` for GIF."""
    return GIF_REFUSED if data[:6] in _GIF_MAGIC else NOT_SUPPORTED


_PARSERS: dict[str, Callable[[bytes], Header]] = {
    "JPEG": _jpeg_header,
    "PNG": _png_header,
    "BMP": _bmp_header,
    "WebP": _webp_header,
    "TIFF": _tiff_header,
}


def probe(data: bytes) -> Header:
    """Format and size of an accepted image from its header; ImageError naming what is wrong otherwise."""
    if len(data) == 0:
        raise ImageError("empty file")
    fmt = format_of(data)
    if fmt is not None:
        return _PARSERS[fmt](data)
    if data[:6] in _GIF_MAGIC:
        raise ImageError(GIF_REFUSED)
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

