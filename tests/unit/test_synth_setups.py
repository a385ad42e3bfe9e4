"""Generator presets (`synth --setup`): lab unchanged, varied and close-up looks, drifts of the lab scene, masks
beside the images, same seed same bytes."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.vision import synth
from inspection.vision.defects import _scratch_curve
from inspection.vision.drawing import Phone, inside_rrect
from inspection.vision.setups import BODIES, DRIFTS, SETUPS, TEXTURES, Drift, sample_drift, sample_look


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes()).hexdigest()[:16]


def test_lab_is_the_default_and_unchanged_by_the_setup_argument() -> None:
    a = synth.render(3, 5, scratch=True, size=(320, 180))
    b = synth.render(3, 5, scratch=True, size=(320, 180), setup="lab")
    assert _digest(a.image) == _digest(b.image) and a.drawn == b.drawn and a.setup == "lab"
    assert a.jpeg_quality == synth.JPEG_QUALITY


@pytest.mark.parametrize("setup", SETUPS)
def test_same_seed_same_pixels_and_masks(setup: str) -> None:
    a = synth.render(8, 2, scratch=True, size=(320, 180), setup=setup)
    b = synth.render(8, 2, scratch=True, size=(320, 180), setup=setup)
    for x, y in ((a.image, b.image), (a.mask, b.mask), (a.glass, b.glass), (a.phone, b.phone)):
        assert np.array_equal(x, y)
    other = synth.render(8, 3, scratch=True, size=(320, 180), setup=setup)
    assert not np.array_equal(a.image, other.image)


@pytest.mark.parametrize("setup", SETUPS)
def test_masks_nest_scratch_in_glass_in_phone(setup: str) -> None:
    s = synth.render(4, 1, scratch=True, size=(480, 270), setup=setup)
    glass, phone = s.glass > 0, s.phone > 0
    assert glass.any() and np.count_nonzero(glass & ~phone) <= 0.01 * np.count_nonzero(glass)
    assert np.count_nonzero((s.mask > 0) & ~glass) <= 0.05 * max(1, np.count_nonzero(s.mask))


def test_varied_looks_cover_the_range() -> None:
    looks = [sample_look(np.random.default_rng(i), "varied", 1920, 1080) for i in range(400)]
    levels = [lk.table_level for lk in looks]
    assert min(levels) < 30 and max(levels) > 215  # near-black to white tables
    assert {lk.body for lk in looks} == set(BODIES) and {lk.texture for lk in looks} == set(TEXTURES)
    assert any(lk.bezel_white for lk in looks) and not all(lk.bezel_white for lk in looks)
    angles = np.array([lk.angle % 180 for lk in looks])
    assert (angles < 10).any() and (np.abs(angles - 90) < 10).any() and ((angles > 20) & (angles < 70)).any()
    covers = [lk.cover for lk in looks]
    assert min(covers) < 0.2 and max(covers) > 0.9
    exposure = [lk.exposure for lk in looks]
    assert min(exposure) < 0.6 and max(exposure) > 1.6
    assert any(lk.motion > 0 for lk in looks) and max(lk.defocus for lk in looks) > 2.0


def test_closeup_glass_fills_most_of_the_frame() -> None:
    shares = [np.count_nonzero(synth.render(6, i, scratch=False, size=(320, 180), setup="closeup").glass) / (320 * 180)
              for i in range(6)]
    assert min(shares) > 0.5


def test_unknown_setup_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown setup"):
        synth.render(0, 0, scratch=False, size=(128, 72), setup="studio")


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_generate_writes_region_masks_and_png_and_is_reproducible(tmp_path: Path) -> None:
    args = {"count": 6, "seed": 5, "size": (160, 96), "progress": False, "setup": "varied", "image_format": "mix"}
    synth.generate(tmp_path / "a", **args)  # type: ignore[arg-type]
    synth.generate(tmp_path / "b", workers=2, **args)  # type: ignore[arg-type]
    a = _tree(tmp_path / "a")
    assert a == _tree(tmp_path / "b")
    with (tmp_path / "a" / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {Path(r["file"]).suffix for r in rows} == {".jpg", ".png"}
    for r in rows:
        assert r["setup"] == "varied"
        phone = cv2.imread(str(tmp_path / "a" / r["phone_mask"]), cv2.IMREAD_UNCHANGED)
        glass = cv2.imread(str(tmp_path / "a" / r["glass_mask"]), cv2.IMREAD_UNCHANGED)
        assert phone.shape == glass.shape == (96, 160) and set(np.unique(glass)) <= {0, 255}
        assert np.count_nonzero(glass) > 0 and np.count_nonzero(glass) <= np.count_nonzero(phone)


def test_generate_refuses_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image format"):
        synth.generate(tmp_path / "o", count=1, seed=0, size=(128, 72), progress=False, image_format="gif")


# Drifts of the lab scene (issue 14's drift simulation): the lab twin (same seed and index) changed only where
# each drift says. (setup, the table changes, the light changes, the table's mean grey level after the camera)
DRIFT_CASES = [
    ("lab-dark-table", True, False, (5.0, 35.0)),
    ("lab-blue-mat", True, False, (60.0, 140.0)),
    ("lab-dim-light", False, True, (45.0, 115.0)),
    ("lab-dark-dim", True, True, (2.0, 25.0)),
]


def test_every_drift_has_a_case() -> None:
    assert {case[0] for case in DRIFT_CASES} == set(DRIFTS) and set(DRIFTS) <= set(SETUPS)


@pytest.mark.parametrize(("setup", "table_changes", "light_changes", "table_grey"), DRIFT_CASES)
def test_drift_differs_from_its_lab_twin_only_where_intended(
    setup: str, table_changes: bool, light_changes: bool, table_grey: tuple[float, float]
) -> None:
    lab = synth.render(21, 3, scratch=True, size=(320, 180))
    drift = synth.render(21, 3, scratch=True, size=(320, 180), setup=setup)
    # same phone, pose, scratches and look-alikes: the ground truth is the lab twin's
    for a, b in ((lab.mask, drift.mask), (lab.glass, drift.glass), (lab.phone, drift.phone)):
        assert np.array_equal(a, b)
    assert drift.drawn == lab.drawn and drift.phone_box == lab.phone_box and drift.setup == setup
    # the phone's inside, clear of the camera's blur at its outline, and the table well away from the phone
    inside = cv2.erode(lab.phone, np.ones((9, 9), np.uint8)) > 0
    table = cv2.dilate(lab.phone, np.ones((25, 25), np.uint8)) == 0
    assert np.array_equal(lab.image[inside], drift.image[inside]) == (not light_changes)
    if light_changes:  # the whole scene under a weaker lamp
        ratio = float(drift.image[inside].mean()) / float(lab.image[inside].mean())
        assert 0.45 < ratio < 0.85
    grey = float(drift.image[table].mean())
    assert table_grey[0] < grey < table_grey[1]
    assert (abs(grey - float(lab.image[table].mean())) > 20) == (table_changes or light_changes)


@pytest.mark.parametrize("setup", DRIFTS)
def test_drifts_have_no_look_and_looks_no_drift(setup: str) -> None:
    with pytest.raises(ValueError, match="no look"):
        sample_look(np.random.default_rng(0), setup, 320, 180)
    with pytest.raises(ValueError, match="no drift"):
        sample_drift(np.random.default_rng(0), "varied")
    assert sample_drift(np.random.default_rng(0), setup).setup == setup


def test_drift_ranges() -> None:
    def drifts(setup: str) -> list[Drift]:
        return [sample_drift(np.random.default_rng(i), setup) for i in range(200)]

    dark = [d.table for d in drifts("lab-dark-table")]
    assert all(t is not None and max(t) < 32 for t in dark)  # near-black, the lab's grey table is 105-150
    blue = [d.table for d in drifts("lab-blue-mat")]
    assert all(t is not None and t[0] > t[1] > t[2] for t in blue)  # BGR: blue above green above red
    lamps = [d.lamp for d in drifts("lab-dim-light")]
    assert all(0.45 < lamp[1] < 0.75 and lamp[0] < lamp[2] for lamp in lamps)  # weaker and warmer
    assert all(d.lamp == (1.0, 1.0, 1.0) for d in drifts("lab-dark-table"))
    assert all(d.table is None for d in drifts("lab-dim-light"))


def _scratch_lengths(drawn: tuple[str, ...]) -> list[int]:
    return [int(d.split(":len")[1].split(":")[0]) for d in drawn if d.startswith("scratch:")]


@pytest.mark.parametrize("index", [522, 933])  # varied seed 777: phones ~90x180 px whose scratch was once a dot
def test_a_scratch_too_long_for_a_small_phone_is_shortened_not_left_as_a_dot(index: int) -> None:
    s = synth.render(777, index, scratch=True, setup="varied")
    assert min(_scratch_lengths(s.drawn)) >= 20
    ys, xs = np.nonzero(s.mask)
    assert max(np.ptp(xs), np.ptp(ys)) >= 20  # the labelled scratch is a line, not a dot


def test_a_glass_too_small_for_every_try_gets_a_line_down_its_middle() -> None:
    phone = Phone(pw=14.0, ph=30.0, pad=4, radius=3.0, rim=1.0, bezel=1.0, u=0.03, matrix=np.eye(2, 3))
    curve = _scratch_curve(np.random.default_rng(0), phone, 10.0)  # 10-40 px wide on a 12x28 px glass
    cx = phone.glass_rect()[0]
    assert len(curve.pts) >= 6 and curve.length >= 2 and np.allclose(curve.pts[:, 0], cx)
    assert inside_rrect(curve.pts, phone.glass_rect(), 0.0)
