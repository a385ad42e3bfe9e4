"""One image-format decision for every path: a file the CLI decodes is one ingest accepts, and a file
one refuses the other refuses with the same words (a GIF used to decode in the CLI and get 415 over HTTP)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inspection.config import Settings
from inspection.core.domain import RouteKind
from inspection.services import context, ingest
from inspection.vision.images import ImageError, read_image_file
from tests.bad_images import png_bomb_header
from tests.fakes import BrightnessScorer, Models


def _scene() -> np.ndarray:
    yy, xx = np.mgrid[0:64, 0:80]
    return np.stack([xx * 3, yy * 4, (xx + yy) % 256], axis=2).astype(np.uint8)


def _cv(ext: str) -> Callable[[], bytes]:
    return lambda: cv2.imencode(ext, _scene())[1].tobytes()


def _pil(fmt: str) -> Callable[[], bytes]:
    def make() -> bytes:
        buf = io.BytesIO()
        Image.fromarray(cv2.cvtColor(_scene(), cv2.COLOR_BGR2RGB)).save(buf, fmt)
        return buf.getvalue()

    return make


# (id, bytes, accepted?, stored file extension)
CASES: list[tuple[str, Callable[[], bytes], bool, str]] = [
    ("jpeg", _cv(".jpg"), True, "jpg"),
    ("png", _cv(".png"), True, "png"),
    ("bmp", _cv(".bmp"), True, "bmp"),
    ("tiff", _cv(".tiff"), True, "tif"),
    ("tiff_pil", _pil("TIFF"), True, "tif"),
    ("webp", _cv(".webp"), True, "webp"),
    ("gif87", lambda: _pil("GIF")().replace(b"GIF89a", b"GIF87a", 1), False, "bin"),
    ("gif", _pil("GIF"), False, "bin"),
    ("text", lambda: b"not an image at all, just words\n" * 5, False, "bin"),
]


@pytest.fixture
def app(settings: Settings):
    ctx = context.Pipeline.create(settings, scorer_factory=Models({"baseline": BrightnessScorer()}))
    yield ctx
    ctx.close()


@pytest.mark.parametrize(("make", "accepted", "ext"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_decode_and_ingest_agree(
    app: context.Pipeline, tmp_path: Path, make: Callable[[], bytes], accepted: bool, ext: str
) -> None:
    data = make()
    path = tmp_path / "upload"
    path.write_bytes(data)
    cli_error: str | None = None
    try:
        read_image_file(path)
    except ImageError as exc:
        cli_error = str(exc)
    out = ingest.inspect(app, data=data, station="s1")
    assert (cli_error is None) is accepted and (out.problem is None) is accepted
    assert ingest.sniff_format(data) == (ext if accepted else None)
    stored = list((app.settings.data_dir / "images").rglob(f"{out.inspection.image_hash}.*"))
    assert [p.suffix for p in stored] == [f".{ext}"]
    if not accepted:
        assert out.problem is not None and out.problem.kind == "unsupported"  # 415 over HTTP
        assert "not a supported image type" in out.problem.reason
        if ext == "bin" and data[:3] == b"GIF":
            assert out.problem.reason == cli_error == "GIF is not a supported image type (JPEG, PNG, BMP, TIFF, WebP)"


def test_a_recognised_but_broken_image_is_unusable_in_both_paths(app: context.Pipeline, tmp_path: Path) -> None:
    data = png_bomb_header()
    (tmp_path / "bomb.png").write_bytes(data)
    with pytest.raises(ImageError, match="too large") as cli:
        read_image_file(tmp_path / "bomb.png", max_pixels=app.settings.max_pixels)
    out = ingest.inspect(app, data=data, station="s1")
    assert out.problem is not None and out.problem.kind == "unusable"  # 422 over HTTP
    assert out.problem.reason == str(cli.value)


def test_a_webp_with_bytes_spliced_in_goes_to_a_person_with_the_reason(app: context.Pipeline, tmp_path: Path) -> None:
    """libwebp would decode it to shifted garbage and the model would judge that; the size check refuses it."""
    good = _cv(".webp")()
    data = good[: len(good) // 2] + bytes(16) + good[len(good) // 2 :]
    (tmp_path / "spliced.webp").write_bytes(data)
    with pytest.raises(ImageError, match="corrupt WebP") as cli:
        read_image_file(tmp_path / "spliced.webp")
    out = ingest.inspect(app, data=data, station="s1")
    assert out.problem is not None and out.problem.kind == "unusable"  # 422 over HTTP
    assert out.problem.reason == str(cli.value)
    assert out.inspection.route == RouteKind.REVIEW and out.inspection.label is None
