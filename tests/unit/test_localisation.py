"""Localisation on any table (vision.localise and the learned vision.segment via preprocess.locate_phone /
warp): generated scenes of every setup hit the true glass, fixed-ROI and whole-frame modes never fail, an
empty frame is refused, lab frames never reach the network, and the shipped network loads offline."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from safetensors.numpy import load_file

from inspection.core.domain import Localisation, LocalisationMode
from inspection.vision import preprocess
from inspection.vision.degrade import jpeg, no_phone
from inspection.vision.images import decode_image
from inspection.vision.localise import learned, outline_measurable
from inspection.vision.preprocess import (
    PhoneFit,
    PreprocessError,
    PreprocessSpec,
    locate_phone,
    locate_phone_otsu,
    warp,
)
from inspection.vision.quality import region_quality
from inspection.vision.segment import META_NAME, MODEL_DIR, ONNX_NAME, load_segmenter
from inspection.vision.setups import sample_look
from inspection.vision.synth import _TAG_LOOK, render

SIZE = (960, 540)


def fit_mask(fit: PhoneFit, shape: tuple[int, int]) -> np.ndarray:
    pts = cv2.boxPoints((fit.centre, fit.size, fit.angle))
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero((a > 0) & (b > 0)) / max(1, np.count_nonzero((a > 0) | (b > 0)))


def _describe(setup: str, seed: int, index: int) -> str:
    if setup == "lab":
        return "lab"
    look = sample_look(np.random.default_rng([_TAG_LOOK, index, seed]), setup, *SIZE)
    bezel = "white bezel" if look.bezel_white else "black bezel"
    return f"{look.body} phone, {bezel}, table {look.table_level:.0f} {look.texture}, {look.angle:.0f} deg"


# A seeded random sample per setup (not hand-picked): SAMPLE scenes of each, and the share of them
# whose found region must hit the true glass with IoU >= 0.9. Measured here: lab 20/20, varied 19/20,
# closeup 19/20; scripts/bench_localisation.py on 300 scenes: lab 100 %, varied ~87 %, closeup ~93 %.
SAMPLE_SEED, SAMPLE = 4242, 20
MIN_SHARE = {"lab": 1.0, "varied": 0.9, "closeup": 0.9}


def _iou_of(setup: str, index: int) -> float:
    sample = render(SAMPLE_SEED, index, scratch=index % 2 == 0, size=SIZE, setup=setup)
    try:
        fit = locate_phone(sample.image)
    except PreprocessError:
        return 0.0
    return iou(fit_mask(fit, sample.glass.shape), sample.glass)


@pytest.mark.parametrize("setup", list(MIN_SHARE))
def test_found_region_hits_the_true_glass(setup: str) -> None:
    ious = {i: _iou_of(setup, i) for i in range(SAMPLE)}
    missed = {i: round(v, 3) for i, v in ious.items() if v < 0.9}
    share = 1.0 - len(missed) / SAMPLE
    detail = "; ".join(f"{i}: IoU {v} ({_describe(setup, SAMPLE_SEED, i)})" for i, v in missed.items())
    assert share >= MIN_SHARE[setup], detail
    assert np.median(list(ious.values())) >= 0.93


def test_sample_covers_the_hard_cases() -> None:
    looks = [sample_look(np.random.default_rng([_TAG_LOOK, i, SAMPLE_SEED]), setup, *SIZE)
             for setup in ("varied", "closeup") for i in range(SAMPLE)]
    assert min(lk.table_level for lk in looks) < 30 and max(lk.table_level for lk in looks) > 160
    assert {"black", "white"} <= {lk.body for lk in looks}
    assert any(lk.bezel_white for lk in looks)
    assert any(20 < lk.angle % 90 < 70 for lk in looks)


@pytest.mark.parametrize("index", range(8))
def test_lab_finds_stay_where_the_lab_localiser_put_them(index: int) -> None:
    """The shipped model was trained on the lab localiser's crops: on lab scenes the new one agrees."""
    image = render(11, index, scratch=True, size=SIZE).image
    new, old = locate_phone(image), locate_phone_otsu(image)
    assert iou(fit_mask(new, image.shape[:2]), fit_mask(old, image.shape[:2])) > 0.95


def test_dark_table_defeats_the_lab_localiser_but_not_the_new_one() -> None:
    sample = render(90210, 2, scratch=True, size=SIZE, setup="varied")  # black phone on a near-black table
    found = locate_phone(sample.image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9
    try:
        old = locate_phone_otsu(sample.image)
    except PreprocessError:
        return
    assert iou(fit_mask(old, sample.glass.shape), sample.glass) < 0.5


@pytest.mark.parametrize(
    ("level", "reason"),
    [(128, "the frame is uniform: grey level 128"), (0, "the frame is too dark to see a phone in: grey level 0"),
     (20, "the frame is too dark to see a phone in: grey level 20 .* check the exposure"),
     (250, "the frame is too bright to see a phone in: grey level 250")],
)
def test_empty_frame_is_refused_with_a_reason(level: int, reason: str) -> None:
    with pytest.raises(PreprocessError, match=f"no phone found .{reason}"):
        locate_phone(np.full((540, 960, 3), level, np.uint8))


def test_textured_table_without_a_phone_is_refused() -> None:
    rng = np.random.default_rng(0)
    table = cv2.resize(rng.normal(120, 10, (30, 50)).astype(np.float32), (960, 540), interpolation=cv2.INTER_CUBIC)
    table += rng.normal(0, 3, table.shape).astype(np.float32)
    image = cv2.cvtColor(np.clip(table, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    with pytest.raises(PreprocessError, match="no phone"):
        locate_phone(image)


def test_whole_frame_mode_maps_the_frame_and_never_refuses() -> None:
    blank = np.full((540, 960, 3), 128, np.uint8)
    warped = warp(blank, PreprocessSpec(), localisation=Localisation(LocalisationMode.FRAME))
    assert warped.canvas.shape == (512, 240, 3) and warped.fit is not None and warped.fit.fixed
    corners = warped.to_canvas @ np.array([[0, 0, 1], [960, 0, 1], [0, 540, 1], [960, 540, 1]], float).T
    xs, ys = sorted(corners[0]), sorted(corners[1])
    assert xs[0] == pytest.approx(0, abs=1e-6) and xs[-1] == pytest.approx(240)
    assert ys[0] == pytest.approx(0, abs=1e-6) and ys[-1] == pytest.approx(512)  # landscape turned upright
    q = region_quality(blank, warped)
    assert "localisation" not in q and "aspect" not in q and q["region_px"] == 540


def test_roi_mode_maps_the_rectangle_at_any_scale() -> None:
    image = np.zeros((540, 960, 3), np.uint8)
    image[54:486, 384:576] = 200  # the rectangle (0.4, 0.1, 0.2, 0.8) of the frame
    roi = Localisation(LocalisationMode.ROI, (0.4, 0.1, 0.2, 0.8))
    warped = warp(image[::2, ::2].copy(), PreprocessSpec(), scale=2.0, localisation=roi)
    assert warped.canvas[8:-8, 8:-8].min() > 190  # all of the canvas is the rectangle
    centre = warped.to_canvas @ np.array([480, 270, 1.0])  # original-frame pixels
    assert centre == pytest.approx([120, 256], abs=1)


def test_auto_mode_is_the_default() -> None:
    sample = render(1, 0, scratch=False, size=SIZE)
    a = warp(sample.image, PreprocessSpec())
    b = warp(sample.image, PreprocessSpec(), localisation=Localisation())
    assert np.array_equal(a.canvas, b.canvas) and a.fit is not None and not a.fit.fixed


def test_shipped_network_loads_offline_and_matches_its_recipe() -> None:
    """models/localiser: ONNX + safetensors (no pickle), a sidecar with the recipe and the files' hashes."""
    meta = json.loads((MODEL_DIR / META_NAME).read_text())
    for name in ("weights.safetensors", ONNX_NAME):
        assert hashlib.sha256((MODEL_DIR / name).read_bytes()).hexdigest() == meta["sha256"][name]
        assert (MODEL_DIR / name).stat().st_size < 1_000_000
    assert sum(v.size for v in load_file(str(MODEL_DIR / "weights.safetensors")).values()) >= meta["parameters"]
    assert {"input", "version", "training_seed", "data", "validation"} <= set(meta)
    segmenter = load_segmenter()
    assert segmenter is not None and segmenter.size == tuple(meta["input"])
    prob = segmenter.glass(np.full((540, 960, 3), 128, np.uint8), (135, 240))
    assert prob.shape == (135, 240) and float(prob.max()) < 0.5  # a flat frame holds no glass


def test_lab_frames_never_reach_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lab crops stay the lab localiser's, bit for bit: lab_find answers before the network is asked."""
    def refuse() -> None:
        raise AssertionError("the network was asked about a lab frame")

    monkeypatch.setattr(preprocess, "load_segmenter", refuse)
    for index in range(4):
        locate_phone(render(11, index, scratch=index % 2 == 0, size=SIZE).image)


@pytest.mark.parametrize(("setup", "index"), [("varied", 0), ("closeup", 0)])
def test_network_alone_finds_the_glass(setup: str, index: int) -> None:
    sample = render(SAMPLE_SEED, index, scratch=False, size=SIZE, setup=setup)
    fit = locate_phone(sample.image, method="net")
    assert iou(fit_mask(fit, sample.glass.shape), sample.glass) >= 0.9
    assert fit.confidence > 0.85  # the mask agrees with its rectangle: the gate's localisation metric


# Dark, low-contrast scenes of the `varied` training set (seed 3) that the first look misses at 1920x1080.
@pytest.mark.parametrize("index", [140, 974])
def test_a_low_contrast_frame_is_found_on_a_contrast_stretched_second_look(index: int) -> None:
    sample = render(3, index, scratch=False, size=(1920, 1080), setup="varied")
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).std()) < preprocess.LOW_CONTRAST_STD
    small, f = preprocess._searched(image)
    with pytest.raises(PreprocessError):  # the first look alone finds nothing
        preprocess._locate(image, small, f, "auto")
    found = locate_phone(image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9


def _varied_as_written(seed: int, index: int, *, scratch: bool) -> tuple[np.ndarray, np.ndarray]:
    """A `varied` frame (1920x1080) as the generator writes it (JPEG at its quality) and the predictor
    decodes it (at half size), and its glass mask at that size."""
    sample = render(seed, index, scratch=scratch, size=(1920, 1080), setup="varied")
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
    image = decode_image(buf.tobytes(), reduce=2)
    return image, cv2.resize(sample.glass, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


# Unseen `varied` scenes (seed 777) where the first look found nothing and the two methods' finds on the
# stretched copy do not agree: a dark mottled mat under a black phone, a dim wood table, grey 13-24 (the
# test set's own frames: `synth.scratch_labels` chose which are scratched).
@pytest.mark.parametrize(("index", "scratch"), [(89, False), (265, True), (310, True), (592, False)])
def test_where_nothing_was_found_one_methods_phone_shaped_find_on_the_stretched_copy_is_taken(
        index: int, scratch: bool) -> None:
    image, glass = _varied_as_written(777, index, scratch=scratch)
    small, f = preprocess._searched(image)
    with pytest.raises(PreprocessError):  # the first look finds nothing
        preprocess._locate(image, small, f, "auto")
    stretch = preprocess._stretch_lut(small)
    assert stretch is not None
    with pytest.raises(PreprocessError):  # the two methods do not agree on the stretched copy
        preprocess._locate(cv2.LUT(image, stretch), cv2.LUT(small, stretch), f, "auto", both=True)
    found = locate_phone(image)
    assert iou(fit_mask(found, glass.shape), glass) >= 0.9


def test_a_very_dark_frame_spanning_six_grey_levels_still_gets_its_second_look() -> None:
    """Seed 777's frame 979: grey 6-13, a small graphite phone on a dark fabric mat a person can see."""
    image, glass = _varied_as_written(777, 979, scratch=False)
    lo, hi = np.percentile(cv2.cvtColor(preprocess._searched(image)[0], cv2.COLOR_BGR2GRAY), [0.5, 99.5])
    assert preprocess.MIN_STRETCH_RANGE <= hi - lo < 8.0
    # the glass is ~75x140 px at this size: a pixel all round is ~4 % of IoU
    assert iou(fit_mask(locate_phone(image), glass.shape), glass) >= 0.85


def test_a_dark_frame_of_noise_alone_is_still_refused() -> None:
    rng = np.random.default_rng(1)
    noise = np.clip(rng.normal(20, 1.0, (540, 960, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(PreprocessError, match="no phone found"):
        locate_phone(noise)


# Unseen `varied` scenes (seed 777, 1920x1080) where the geometry's dark region runs into the frame's dark
# border while the phone lies whole inside it; the network's glass agrees and does not touch the border.
# The confidence was fill * (1 - cut) of the geometry alone (0.13-0.54): the gate stopped right finds.
@pytest.mark.parametrize("index", [251, 532, 590, 702])
def test_a_whole_phone_found_by_both_methods_is_not_called_cut_by_the_frame(index: int) -> None:
    sample = render(777, index, scratch=index % 2 == 0, size=(1920, 1080), setup="varied")
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    small, f = preprocess._searched(image)
    geometry = preprocess._geometry(image, small, f)
    assert geometry is not None and geometry[1].cut > 0.3  # the geometry alone sees a cut phone
    found = locate_phone(image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9
    assert found.confidence >= 0.85


def _network_find(image: np.ndarray) -> PhoneFit | None:
    """The network's glass alone, before any rule about outlines (the bare mask's rectangle)."""
    small, f = preprocess._searched(image)
    segmenter = load_segmenter()
    assert segmenter is not None
    found = learned(small, segmenter.glass(small, small.shape[:2]))
    if found is None:
        return None
    (cx, cy), (rw, rh), angle = found[0].rect
    return PhoneFit(centre=(cx / f, cy / f), size=(rw / f, rh / f), angle=angle, fill=found[0].fill, cut=0.0,
                    area_share=found[0].area_share)


# Bare tables of the gate's corpus (degrade.no_phone "texture": grey with low-frequency shading) on which
# the network marks a shading blob; it used to be taken for a phone, and one was auto-rejected under `full`.
@pytest.mark.parametrize(("strength", "seed"), [(2, 4100), (2, 4101), (2, 4103), (3, 4100), (3, 4102), (3, 4103)])
def test_a_bare_table_is_refused_though_the_network_marks_a_blob(strength: int, seed: int) -> None:
    image = cv2.imdecode(np.frombuffer(no_phone("texture", strength, seed=seed).data, np.uint8), cv2.IMREAD_COLOR)
    assert _network_find(image) is not None  # the network alone sees "glass" there
    with pytest.raises(PreprocessError, match="no phone found"):
        locate_phone(image)


# Unseen `varied` scenes (seed 777, 1920x1080) where the geometry and the network found different regions
# and the network's, taken before, was off the phone; the geometry's rectangle fits better.
@pytest.mark.parametrize("index", [174, 429, 790])
def test_where_the_two_methods_disagree_the_better_fitting_rectangle_wins(index: int) -> None:
    sample = render(777, index, scratch=index % 2 == 0, size=(1920, 1080), setup="varied")
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    network = _network_find(image)
    assert network is not None and iou(fit_mask(network, sample.glass.shape), sample.glass) < 0.8
    found = locate_phone(image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9


# Unseen dark `varied` scenes (seed 777, 1920x1080) where the first look has the network's glass alone, off
# the phone; on the contrast-stretched copy both methods agree on the right region, and that find wins.
@pytest.mark.parametrize("index", [405, 475])
def test_a_network_only_find_gives_way_to_one_both_methods_agree_on_when_stretched(index: int) -> None:
    sample = render(777, index, scratch=index % 2 == 0, size=(1920, 1080), setup="varied")
    ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    small, f = preprocess._searched(image)
    first, source = preprocess._locate(image, small, f, "auto")
    assert source == "network" and iou(fit_mask(first, sample.glass.shape), sample.glass) < 0.8
    found = locate_phone(image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9


# Close-ups (the bench's seed 90210, 960x540) whose glass reaches past the frame on every side: no outline
# lies inside the frame to measure, so the outline rule cannot apply, and the network's glass stays.
@pytest.mark.parametrize("index", [16, 40])
def test_a_close_up_glass_past_every_frame_edge_is_kept_without_a_measurable_outline(index: int) -> None:
    sample = render(90210, index, scratch=index % 2 == 0, size=SIZE, setup="closeup")
    small, _ = preprocess._searched(sample.image)
    segmenter = load_segmenter()
    assert segmenter is not None
    network = learned(small, segmenter.glass(small, small.shape[:2]))
    assert network is not None and not outline_measurable(small.shape, network[0])
    found = locate_phone(sample.image)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= 0.9


def _reconciled(image: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> PhoneFit:
    """What locate_phone found before the phone-shape fallback (every find taken as phone-shaped)."""
    with monkeypatch.context() as m:
        m.setattr(preprocess, "_is_phone_shaped", lambda fit: True)
        return locate_phone(image)


# Unseen `varied` scenes (seed 777, 1920x1080, JPEG as the bench_gate sends them): a white-bezel phone whose
# snapped outline was pulled in to its display's edge (too long to be a phone: aspect > 2.45), and a loose
# light region that fills its rectangle poorly; each method's own rectangle holds a phone-shaped find.
@pytest.mark.parametrize(("index", "before", "after"), [(404, 0.8, 0.9), (446, 0.85, 0.9), (994, 0.6, 0.8)])
def test_a_find_that_is_not_phone_shaped_gives_way_to_a_method_s_own_that_is(
    index: int, before: float, after: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = render(777, index, scratch=index % 2 == 0, size=(1920, 1080), setup="varied")
    image = cv2.imdecode(np.frombuffer(jpeg(sample.image), np.uint8), cv2.IMREAD_COLOR)
    first = _reconciled(image, monkeypatch)
    assert not preprocess._is_phone_shaped(first)
    assert iou(fit_mask(first, sample.glass.shape), sample.glass) < before
    found = locate_phone(image)
    assert preprocess._is_phone_shaped(found)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= after


# Unseen dark `varied` scenes (seed 777, 1920x1080, JPEG as bench_gate sends them) whose first look finds
# nothing phone-shaped (a network glass split by glare; a dark region along the frame's edge, confidence 0);
# on the contrast-stretched copy a method finds the phone, and a phone-shaped find there wins.
@pytest.mark.parametrize(("index", "before", "after"), [(356, 0.5, 0.95), (660, 0.1, 0.8)])
def test_a_find_that_is_not_phone_shaped_gives_way_to_a_phone_shaped_one_when_stretched(
    index: int, before: float, after: float
) -> None:
    sample = render(777, index, scratch=index % 2 == 0, size=(1920, 1080), setup="varied")
    image = cv2.imdecode(np.frombuffer(jpeg(sample.image), np.uint8), cv2.IMREAD_COLOR)
    small, f = preprocess._searched(image)
    first, _ = preprocess._locate(image, small, f, "auto")
    assert not preprocess._is_phone_shaped(first)
    assert iou(fit_mask(first, sample.glass.shape), sample.glass) < before
    found = locate_phone(image)
    assert preprocess._is_phone_shaped(found)
    assert iou(fit_mask(found, sample.glass.shape), sample.glass) >= after
