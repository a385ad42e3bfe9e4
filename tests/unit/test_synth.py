"""Synthetic phone images: determinism, labels, masks, dataset layout. Small sizes keep it fast."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.vision import synth

SMALL = (320, 180)


def _read_manifest(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _tree_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


# -- render -------------------------------------------------------------------------------------


def test_render_is_deterministic_and_seed_dependent() -> None:
    a = synth.render(5, 3, scratch=True, size=SMALL)
    b = synth.render(5, 3, scratch=True, size=SMALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.drawn == b.drawn and a.phone_box == b.phone_box
    assert not np.array_equal(a.image, synth.render(6, 3, scratch=True, size=SMALL).image)
    assert not np.array_equal(a.image, synth.render(5, 4, scratch=True, size=SMALL).image)


@pytest.mark.parametrize("size", [SMALL, (64, 64), (200, 300), (1920, 1080)])
def test_render_shapes_and_types(size: tuple[int, int]) -> None:
    s = synth.render(1, 0, scratch=True, size=size)
    w, h = size
    assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8 and s.image.flags.c_contiguous
    assert s.mask.shape == (h, w) and s.mask.dtype == np.uint8
    assert set(np.unique(s.mask).tolist()) <= {0, 255}
    x, y, bw, bh = s.phone_box
    assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h


def test_phone_pose_at_full_hd() -> None:
    """Portrait phone, long side ~80-88 % of the frame height (rotation adds a little), near the centre."""
    for index in range(3):
        x, y, w, h = synth.render(2, index, scratch=False).phone_box
        assert 0.78 * 1080 <= h <= 0.92 * 1080
        assert 0.4 * h <= w <= 0.6 * h
        assert abs(x + w / 2 - 960) < 0.05 * 1920 and abs(y + h / 2 - 540) < 0.05 * 1080


@pytest.mark.parametrize("index", range(6))
def test_mask_nonempty_exactly_for_positives_and_inside_glass(index: int) -> None:
    pos = synth.render(11, index, scratch=True, size=SMALL)
    neg = synth.render(11, index, scratch=False, size=SMALL)
    assert pos.label == "scratch" and neg.label == "ok"
    assert pos.mask.any() and not neg.mask.any()
    assert not np.any((pos.mask > 0) & (pos.glass == 0)), "scratch pixels outside the glass"
    scratches = [d for d in pos.drawn if d.startswith("scratch:")]
    assert 1 <= len(scratches) <= 3
    assert not any(d.startswith("scratch") for d in neg.drawn)


@pytest.mark.parametrize("index", range(4))
def test_scratch_changes_pixels_only_near_its_mask(index: int) -> None:
    with_s = synth.render(21, index, scratch=True, size=(640, 360))
    without = synth.render(21, index, scratch=True, size=(640, 360), draw_scratches=False)
    assert np.array_equal(with_s.mask, without.mask)
    changed = np.abs(with_s.image.astype(np.int16) - without.image.astype(np.int16)).max(axis=2) > 0
    near = cv2.dilate(with_s.mask, np.ones((7, 7), np.uint8)) > 0  # AA fringe + optics blur
    assert changed.sum() > 0
    assert (changed & ~near).sum() <= 0.01 * changed.sum()
    on_mask = with_s.mask > 0
    assert changed[on_mask].mean() > 0.5  # most mask pixels visibly carry the scratch


def test_scratch_descriptions_are_parseable() -> None:
    s = synth.render(3, 1, scratch=True, size=(1920, 1080))
    for item in s.drawn:
        if item.startswith("scratch:"):
            _, w, length, contrast = item.split(":")
            assert 1 <= int(w[1:]) <= 4
            assert 3 <= int(length[3:]) <= 700
            assert 15 <= int(contrast[8:]) <= 120
        else:
            assert item in synth.DISTRACTORS


def test_distractor_mix() -> None:
    """~25 % of negatives clean, ~50 % of positives clean; the rest carry 1-4 look-alike types."""
    rngs = [np.random.default_rng(i) for i in range(400)]
    neg = [synth.distractor_types(r, scratch=False) for r in rngs]
    pos = [synth.distractor_types(r, scratch=True) for r in rngs]
    assert 0.17 < sum(not k for k in neg) / len(neg) < 0.33
    assert 0.4 < sum(not k for k in pos) / len(pos) < 0.6
    assert all(len(k) <= 4 and len(set(k)) == len(k) for k in neg + pos)
    assert {k for kinds in neg for k in kinds} == set(synth.DISTRACTORS)


def test_render_rejects_tiny_size() -> None:
    with pytest.raises(ValueError, match="at least 64x64"):
        synth.render(0, 0, scratch=True, size=(63, 100))


# -- labels and generate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "fraction"), [(10, 0.5), (7, 0.3), (1, 1.0), (1, 0.0), (100, 0.25), (3, 0.5)]
)
def test_labels_exact_count(count: int, fraction: float) -> None:
    labels = synth.scratch_labels(4, count, fraction)
    assert int(labels.sum()) == round(count * fraction)
    assert np.array_equal(labels, synth.scratch_labels(4, count, fraction))


def test_generate_layout_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    report = synth.generate(out, count=12, seed=7, scratch_fraction=0.25, size=(160, 96), progress=False)
    assert report.count == 12 and report.positives == 3 and report.images_per_second > 0
    rows = _read_manifest(out)
    assert [int(r["index"]) for r in rows] == list(range(12))
    assert set(rows[0]) >= {"file", "label", "seed", "index", "width", "height", "drawn", "phone_box"}
    assert sum(r["label"] == "scratch" for r in rows) == 3
    names = [Path(r["file"]).stem for r in rows]
    assert len(set(names)) == 12
    images = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.jpg"))
    assert images == sorted(r["file"] for r in rows)
    for r in rows:
        assert r["file"].startswith(r["label"] + "/") and r["seed"] == "7"
        img = cv2.imread(str(out / r["file"]), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (96, 160, 3) and (r["width"], r["height"]) == ("160", "96")
        mask = cv2.imread(str(out / "masks" / (Path(r["file"]).stem + ".png")), cv2.IMREAD_UNCHANGED)
        assert mask is not None and mask.shape == (96, 160) and mask.dtype == np.uint8
        assert bool(mask.any()) == (r["label"] == "scratch")
        assert ("scratch:" in r["drawn"]) == (r["label"] == "scratch")
        x, y, w, h = (int(v) for v in r["phone_box"].split(","))
        assert w > 0 and h > 0 and x + w <= 160 and y + h <= 96


def test_generate_same_bytes_for_any_worker_count(tmp_path: Path) -> None:
    args = {"count": 6, "seed": 3, "size": (128, 72), "progress": False}
    synth.generate(tmp_path / "a", workers=1, **args)  # type: ignore[arg-type]
    synth.generate(tmp_path / "b", workers=2, **args)  # type: ignore[arg-type]
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a == b and len(a) == 6 * 4 + 1  # image, scratch mask, phone and glass masks; manifest
    synth.generate(tmp_path / "c", count=6, seed=4, size=(128, 72), progress=False)
    c = _tree_bytes(tmp_path / "c")
    assert a["manifest.csv"] != c["manifest.csv"]
    assert not set(a.values()) & {v for k, v in c.items() if k.endswith(".jpg")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count must be at least 1"),
        ({"scratch_fraction": 1.5}, "scratch fraction"),
        ({"scratch_fraction": -0.1}, "scratch fraction"),
        ({"size": (32, 200)}, "at least 64x64"),
        ({"workers": 0}, "workers"),
        ({"seed": -1}, "seed"),
    ],
)
def test_generate_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"count": 2, "seed": 0, "size": (128, 72), "progress": False} | kwargs
    with pytest.raises(ValueError, match=message):
        synth.generate(tmp_path / "out", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_generate_refuses_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        synth.generate(tmp_path, count=1, seed=0, size=(128, 72), progress=False)
