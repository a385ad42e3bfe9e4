"""Image -> network input and back: find the phone, warp it upright onto a fixed canvas, and map the
network's cell scores back onto the original frame as a heatmap and boxes (OpenCV, numpy).

Why a phone crop: scratches are 1-4 px wide on a 1920x1080 frame. Resizing the whole frame to 224 px
(scale 0.12) erases them; the phone fills ~430x920 px of the frame, so warping just the phone onto a
240x512 canvas keeps a scale of ~0.55 (a 2 px scratch stays ~1 px wide) at 2.4x the pixels of 224x224.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from inspection.core.domain import Localisation, LocalisationMode, Region
from inspection.vision.localise import (
    AGREE,
    MIN_SUPPORT,
    SEARCH_SIDE,
    Candidate,
    Rect,
    agreement,
    band,
    best_candidate,
    candidate_of,
    edge_support,
    gradient,
    lab_find,
    learned,
    outline_measurable,
    refine,
    snap,
)
from inspection.vision.segment import load_segmenter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# A search that found nothing is retried on a contrast-stretched copy when the frame's grey levels
# spread less than this (std, levels of 255) ...
LOW_CONTRAST_STD = 12.0
# ... but over at least this many levels (0.5-99.5 %): below it the frame is sensor noise, nothing to find.
# (Seed 777's two darkest frames with a phone a person can see span 5.7 and 6.3 levels; grey noise of
# sigma 1 spans 3.)
MIN_STRETCH_RANGE = 5.0
# A phone's glass is this many times as long as it is wide (the generator's phones 1.8-2.3, real 16:9 to
# 21:9 phones ~1.8-2.4, with a margin), and a clear find fills its rectangle at least this well: of a
# find that is not phone-shaped and another method's that is, the other is the phone (_is_phone_shaped).
PHONE_ASPECT = (1.65, 2.45)
CLEAR_FIT = 0.7


class PreprocessError(ValueError):
    """The image cannot be judged by this model (e.g. no phone found): it must go to a person."""


@dataclass(frozen=True)
class PreprocessSpec:
    mode: str = "phone"  # "phone": find, crop and straighten the phone; "resize": whole image
    canvas_h: int = 512
    canvas_w: int = 240
    margin: float = 0.03  # extra border around the phone, as a share of its size

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, object]) -> PreprocessSpec:
        return PreprocessSpec(
            mode=str(data["mode"]),
            canvas_h=int(str(data["canvas_h"])),
            canvas_w=int(str(data["canvas_w"])),
            margin=float(str(data.get("margin", 0.03))),
        )

    def decode_reduce(self, width: int, height: int) -> int:
        """Largest JPEG DCT down-scale (1, 2, 4, 8) that still leaves enough pixels for the canvas:
        decoding at 1/2 size is ~3x faster and loses nothing once we resample to the canvas."""
        need = self.canvas_h if self.mode == "phone" else max(self.canvas_h, self.canvas_w)
        short = height if self.mode == "phone" else min(width, height)
        best = 1
        for r in (2, 4, 8):
            if short / r >= need:
                best = r
        return best


@dataclass(frozen=True)
class Warped:
    canvas: np.ndarray  # canvas_h x canvas_w x 3 uint8 BGR
    to_canvas: np.ndarray  # 2x3 affine, original pixel -> canvas pixel
    scale: float  # decode reduce factor: original = decoded * scale
    fit: PhoneFit | None = None  # the region: found or fixed by the station; None for a whole-frame "resize"


@dataclass(frozen=True)
class PhoneFit:
    """Where the phone was found (in the searched image's pixels) and how well the find fits a phone.

    fill: the dark region's area over its minimum-area rectangle's: a phone is a (rounded) rectangle
      (~0.95-0.99); a phone merged with a shadow, a cluttered pattern or a torn blob fills it less.
    cut: how much of the region lies on the frame border, as a share of the rectangle's short side:
      0 for a phone wholly inside the frame, ~1 for one cut across its width by the frame edge.
    confidence = fill * (1 - cut), in [0, 1]: both must hold for the warp to show a whole phone."""

    centre: tuple[float, float]
    size: tuple[float, float]  # (short side, long side)
    angle: float
    fill: float
    cut: float
    area_share: float
    fixed: bool = False  # a station's fixed region (roi or whole frame), not a find: nothing to be unsure of

    @property
    def confidence(self) -> float:
        return max(0.0, self.fill * (1.0 - min(1.0, self.cut)))

    @property
    def aspect(self) -> float:
        return self.size[1] / max(self.size[0], 1e-6)


def _searched(image: np.ndarray) -> tuple[np.ndarray, float]:
    """A copy with its long side SEARCH_SIDE px (~2 ms to search at 960x540) and its scale factor."""
    h, w = image.shape[:2]
    f = SEARCH_SIDE / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return small, f


def _fit_from_rect(rect: tuple[tuple[float, float], tuple[float, float], float], f: float, *, fill: float,
                   cut: float, area_share: float) -> PhoneFit:
    # OpenCV's rectangle angle conventions changed across versions: derive the tilt from the corners.
    pts = cv2.boxPoints(rect)
    e1, e2 = pts[1] - pts[0], pts[2] - pts[1]
    n1, n2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    long_edge, rw, rh = (e1, n2, n1) if n1 >= n2 else (e2, n1, n2)
    # angle of the long edge from the image's vertical axis, folded into (-90, 90]
    angle = float(np.degrees(np.arctan2(long_edge[0], long_edge[1])))
    angle = (angle + 90.0) % 180.0 - 90.0
    angle = -angle  # getRotationMatrix2D turns counter-clockwise for positive angles
    (cx, cy) = rect[0]
    return PhoneFit(centre=(cx / f, cy / f), size=(rw / f, rh / f), angle=angle, fill=fill, cut=cut,
                    area_share=area_share)


def locate_phone(image: np.ndarray, *, method: str = "auto") -> PhoneFit:
    """The phone on any table (see `localise` and `segment`), as a rotated rectangle with its fit.
    PreprocessError, with what was seen, when nothing phone-like is found.

    Lab scenes: `lab_find`, the lab localiser's crop (the shipped model was trained on it). Otherwise
    the geometry's find and the network's glass mask: the geometry's rectangle stays when it agrees with
    the mask (IoU >= localise.AGREE: its edges are sharper than the mask's), else the rectangle fitted to
    the mask, snapped onto the outline, with the mask's fit as the confidence. `method` "geometry" or
    "net" uses one of the two alone (scripts/bench_localisation.py compares them)."""
    small, f = _searched(image)
    lab = lab_find(small)
    if lab is not None:  # the lab's case: the lab localiser's crop, as the shipped model was trained on
        return _fit_from_rect(lab.rect, f, fill=lab.fill, cut=lab.cut, area_share=lab.area_share)
    try:
        fit, source = _locate(image, small, f, method)
    except PreprocessError:
        fit, source = None, ""
    unshaped = fit is not None and not _is_phone_shaped(fit)
    if fit is not None and (method != "auto" or (source != "network" and not unshaped)):
        return fit
    # Nothing found, the network's glass alone (the geometry saw nothing or lost the disagreement), or a
    # find that is not phone-shaped. A dark exposure (or a black phone on a black mat) spans a few grey
    # levels: the cues' fixed thresholds see a flat frame. Stretched to the full range, the phone's outline
    # is there again, and a find both methods agree on there beats the network's alone (varied test set,
    # seed 777: 5 network finds, IoU 0.31-0.89, became 0.85-0.99; a phone-shaped geometry find is kept:
    # stretching moved 3 of those off the glass). A first find that is not phone-shaped gives way to a
    # phone-shaped one only, agreed on or else either method's (seed 777: 4 finds, IoU 0.06-0.99 with
    # confidence 0.00-0.81 -> 0.82-0.99 and 0.74-0.95; 1 moved further off, 0.68 -> 0.54). Only the search
    # sees the stretched copy; the model and the gate see the image as taken.
    # Where the first look found nothing at all, a phone-shaped find of one method alone is taken as well
    # (_takes_second_look).
    stretch = _stretch_lut(small)
    if stretch is not None:
        looks = (True, False) if (unshaped or fit is None) and method == "auto" else (method == "auto",)
        for both in looks:
            try:
                second, how = _locate(cv2.LUT(image, stretch), cv2.LUT(small, stretch), f, method, both=both)
            except PreprocessError:
                continue
            if _takes_second_look(second, how, both=both, first=fit, method=method):
                return second
    if fit is None:
        raise PreprocessError(f"no phone found ({_nothing_seen(small)})")
    return fit


def _takes_second_look(second: PhoneFit, how: str, *, both: bool, first: PhoneFit | None, method: str) -> bool:
    """Whether a find on the contrast-stretched copy (`how`: _locate's source) replaces the first look's.

    Where the first look found nothing or the network's glass alone, a find the two methods agree on. Where
    it found a region that is not phone-shaped, a phone-shaped one. Where it found nothing at all, also a
    phone-shaped find of one method alone, outlined: on the varied test set (seed 777) 7 of the 10 frames
    with nothing found (grey 11-25, or a mottled dark mat) were found so, IoU 0.66-0.99 (one 0.66), where
    the two methods' finds did not agree; the other 3 were not phone-shaped and stay refused. A close-up's
    frame-wide band has no outline of its own: on a stretched bare table it is any band of the texture.
    The gate still judges the find like any other (its localisation confidence and shape ranges)."""
    unshaped = first is not None and not _is_phone_shaped(first)
    if not unshaped and (both or method != "auto"):
        return True
    return _is_phone_shaped(second) and (first is not None or how != "band")


def _stretch_lut(small: np.ndarray) -> np.ndarray | None:
    """A lookup table mapping the frame's 0.5-99.5 % grey range onto 0-255, for a low-contrast frame
    that still holds some structure (None otherwise: it has contrast, or nothing but noise)."""
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    lo, hi = (float(v) for v in np.percentile(grey, [0.5, 99.5]))
    if float(grey.std()) >= LOW_CONTRAST_STD or hi - lo < MIN_STRETCH_RANGE:
        return None
    levels = (np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(levels, 0, 255).astype(np.uint8)


def _locate(image: np.ndarray, small: np.ndarray, f: float, method: str, *,
            both: bool = False) -> tuple[PhoneFit, str]:
    """locate_phone past the lab's case: the geometry and the network, reconciled, and who found the
    region ("both", "geometry", "band": the geometry's close-up band, or "network"). `both`: only a find the
    two agree on (the second look at a stretched dark frame, where either alone may follow noise)."""
    geo = _geometry(image, small, f) if method != "net" else None
    segmenter = load_segmenter() if method != "geometry" else None
    net = learned(small, segmenter.glass(small, small.shape[:2])) if segmenter is not None else None
    grad = gradient(small)
    level = float(np.median(grad))
    if (net is not None and not both and outline_measurable(small.shape, net[0])
            and edge_support(grad, net[0], level) < MIN_SUPPORT):
        # The geometry's rule for the network's glass too: a region without an outline is no phone. On a
        # bare table the network marks a shading blob (support 0.9-1.5, a phone's 2-40); on the varied
        # test set such finds were mostly off the phone (IoU < 0.8 for 14 of 18). A close-up's glass that
        # reaches past the frame on every side shows no outline to measure: it stays. (The second look
        # needs the geometry's agreement anyway: the geometry's region has an outline.)
        net = None
    agree = geo is not None and net is not None and agreement(geo[0], net[1], f) >= AGREE
    if both and not agree:
        raise PreprocessError(f"no phone found ({_nothing_seen(small)})")
    found = (geo, net)  # before the reconciliation drops one: the fallbacks if its find is not phone-shaped
    if geo is not None and net is not None and not agree and _geometry_wins(geo[1], net[0]):
        net = None  # two different regions: the better-fitting rectangle is the phone
    if geo is not None and (net is None or agree):
        rect, cand = geo
        source = "both" if agree else "band" if cand.cue == "band" else "geometry"
        if net is not None:
            # Two methods found the same glass. The geometry's dark region often runs into a dark frame
            # border (vignetting, a shadow, a black mat) while the phone lies whole inside it: the network's
            # glass does not touch the border then. The phone is cut only when both see it at the edge.
            cand = replace(cand, cut=min(cand.cut, net[0].cut))
    elif net is not None:
        cand = net[0]
        rect = snap(image, _scaled(cand.rect, f))
        source = "network"
    else:
        raise PreprocessError(f"no phone found ({_nothing_seen(small)})")
    fit = _fit_of(rect, cand)
    if both or _is_phone_shaped(fit):
        return fit, source
    return next((o for o in _alternatives(image, *found, f) if _is_phone_shaped(o)), fit), source


def _alternatives(image: np.ndarray, geo: tuple[Rect, Candidate] | None, net: tuple[Candidate, np.ndarray] | None,
                  f: float) -> list[PhoneFit]:
    """Each method's own rectangle, to fall back on when the reconciled find is not phone-shaped: the
    network's snapped and as fitted to its mask (on a white bezel the snap can pull the short sides in to
    the display's edge: the glass looks too long), then the geometry's. Only outlined regions: a network
    glass dropped for lack of an outline (a shading blob on a bare table) is never one."""
    out = []
    if net is not None:
        fitted = _scaled(net[0].rect, f)
        out += [_fit_of(snap(image, fitted), net[0]), _fit_of(fitted, net[0])]
    if geo is not None:
        out.append(_fit_of(*geo))
    return out


def _fit_of(rect: Rect, cand: Candidate) -> PhoneFit:
    """A found rectangle (image pixels) as a PhoneFit, with the fit measures of the candidate it came from."""
    return _fit_from_rect(rect, 1.0, fill=cand.fill, cut=cand.cut, area_share=cand.area_share)


def _is_phone_shaped(fit: PhoneFit) -> bool:
    """PHONE_ASPECT and CLEAR_FIT. Of a reconciled find that is not phone-shaped and a method's own that
    is, the latter is the phone: on the bench's varied frames (seed 777, 1,000) this moved 6 finds closer
    to the glass (IoU 0.52-0.88 -> 0.84-0.94: white-bezel phones cut to their display, a loose light region)
    and 1 further off (0.71 -> 0.68)."""
    return PHONE_ASPECT[0] <= fit.aspect <= PHONE_ASPECT[1] and fit.confidence >= CLEAR_FIT


def _geometry_wins(geo: Candidate, net: Candidate) -> bool:
    """Whether the geometry's region beats the network's different one: it fits a rectangle at least as
    well (fill x (1 - cut), both outlined). On the varied test set (seed 777) the two found different
    outlined regions in 8 frames; the network's, which won them all before, was off the glass (IoU
    0.25-0.65) in 6; the better-fitting one was the better of the two in all 8 (preferring the sharper
    outline as well lost 2 of them). A close-up's band is no outline (its sides are the frame's): the
    network keeps those."""
    return geo.cue != "band" and geo.fit >= net.fit


def _geometry(image: np.ndarray, small: np.ndarray, f: float) -> tuple[Rect, Candidate] | None:
    """The geometry's find: the best cue's region (or a close-up's band), refined, snapped."""
    best = best_candidate(small) or band(small)
    if best is None:
        return None
    # the geometry from a finer look; how well the find fits a phone (the confidence) from the whole frame
    rect = refine(image, best, f) if min(best.rect[1]) < 24 else _scaled(best.rect, f)
    return snap(image, rect), best


def _scaled(rect: tuple[tuple[float, float], tuple[float, float], float],
            f: float) -> tuple[tuple[float, float], tuple[float, float], float]:
    (cx, cy), (rw, rh), ang = rect
    return (cx / f, cy / f), (rw / f, rh / f), ang


# Mean grey levels of a nearly flat frame below (above) which it is too dark (bright) to see a phone in, not
# an empty table: the varied test set's frames with nothing found were at grey 11-22, and a person still made
# the phone out in most of them on a contrast-stretched copy. The reason then says what to fix: the exposure.
DARK_FRAME, BRIGHT_FRAME = 40.0, 215.0


def _nothing_seen(small: np.ndarray) -> str:
    """Why nothing was found, in words: a frame too dark or too bright to see into, a flat frame, or nothing
    rectangular of a phone's shape."""
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    mean, std = float(grey.mean()), float(grey.std())
    if std < 4.0:
        level = f"grey level {mean:.0f} +- {std:.1f}"
        if mean < DARK_FRAME:
            return f"the frame is too dark to see a phone in: {level}; check the exposure and the light"
        if mean > BRIGHT_FRAME:
            return f"the frame is too bright to see a phone in: {level}; check the exposure and the light"
        return f"the frame is uniform: {level}"
    return "no phone-shaped object stands out from the table"


def locate_phone_otsu(image: np.ndarray) -> PhoneFit:
    """The lab localiser (before issue 9), kept for scripts/bench_localisation.py: the largest dark
    region on a lighter table."""
    small, f = _searched(image)
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, dark = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise PreprocessError("no phone found (no dark object on the table)")
    biggest = max(contours, key=cv2.contourArea)
    area_share = cv2.contourArea(biggest) / float(small.shape[0] * small.shape[1])
    if not 0.04 <= area_share <= 0.9:
        raise PreprocessError(f"no phone found (dark region covers {area_share:.0%} of the frame)")
    cand = candidate_of("dark", biggest, small.shape[:2], check=False)
    assert cand is not None  # unchecked fits always exist
    if not 1.3 <= cand.aspect <= 3.2:
        raise PreprocessError(f"no phone found (dark region aspect {cand.aspect:.2f})")
    return _fit_from_rect(cand.rect, f, fill=cand.fill, cut=cand.cut, area_share=area_share)


def find_phone(image: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Rotated rectangle (centre, (w, h), angle) of the phone (see locate_phone)."""
    fit = locate_phone(image)
    return fit.centre, fit.size, fit.angle


def fixed_region(image: np.ndarray, localisation: Localisation) -> PhoneFit:
    """The inspected region a station set (the whole frame, or its fractional rectangle) as a fit: its
    long side goes to the canvas's long side. Never fails: there is no phone to find."""
    h, w = image.shape[:2]
    x, y, rw, rh = (0.0, 0.0, 1.0, 1.0)
    if localisation.mode is LocalisationMode.ROI and localisation.roi is not None:
        x, y, rw, rh = localisation.roi
    pw, ph = max(1.0, rw * w), max(1.0, rh * h)
    centre = ((x + rw / 2) * w, (y + rh / 2) * h)
    angle = 0.0 if ph >= pw else 90.0  # landscape regions are turned upright, like a landscape phone
    return PhoneFit(centre=centre, size=(min(pw, ph), max(pw, ph)), angle=angle, fill=1.0, cut=0.0,
                    area_share=pw * ph / float(w * h), fixed=True)


def warp(image: np.ndarray, spec: PreprocessSpec, *, scale: float = 1.0,
         localisation: Localisation | None = None) -> Warped:
    """Map `image` (decoded at 1/scale of the original) onto the canvas. `localisation` (None: auto)
    says where the inspected region is: found (auto), a fixed rectangle (roi) or the whole frame."""
    ch, cw = spec.canvas_h, spec.canvas_w
    mode = LocalisationMode.AUTO if localisation is None else localisation.mode
    if spec.mode == "resize" and mode is not LocalisationMode.ROI:
        h, w = image.shape[:2]
        m = np.array([[cw / w, 0, 0], [0, ch / h, 0]], dtype=np.float64)
        fit = None
    else:
        if mode is LocalisationMode.AUTO:
            fit = locate_phone(image)
        else:
            assert localisation is not None
            fit = fixed_region(image, localisation)
        (cx, cy), (rw, rh), angle = fit.centre, fit.size, fit.angle
        if not fit.fixed:  # a station's rectangle is taken as drawn; a found phone gets a margin
            rw, rh = rw * (1 + 2 * spec.margin), rh * (1 + 2 * spec.margin)
        # rotate about the region's centre so it stands upright, then scale its box onto the canvas
        rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        sx, sy = cw / rw, ch / rh
        m = np.array([[sx, 0, cw / 2 - sx * cx], [0, sy, ch / 2 - sy * cy]]) @ np.vstack([rot, [0, 0, 1]])
    canvas = cv2.warpAffine(image, m, (cw, ch), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    # express the transform in original-frame pixels
    to_canvas = m @ np.array([[1 / scale, 0, 0], [0, 1 / scale, 0], [0, 0, 1]])
    return Warped(canvas=canvas, to_canvas=to_canvas, scale=scale, fit=fit)


def to_tensor_array(canvases: list[np.ndarray]) -> np.ndarray:
    """N x 3 x H x W float32, RGB, ImageNet-normalised."""
    rgb = np.stack(canvases)[..., ::-1].astype(np.float32) / np.float32(255.0)
    normed = (rgb - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(normed.transpose(0, 3, 1, 2))


def heatmap_to_frame(cells: np.ndarray, to_canvas: np.ndarray, frame_wh: tuple[int, int], *,
                     canvas_hw: tuple[int, int], out_step: int = 8) -> np.ndarray:
    """Cell probabilities (h x w over the canvas) -> float32 heatmap over the original frame at
    1/out_step resolution (zero outside the phone)."""
    ch, cw = canvas_hw
    fw, fh = frame_wh
    up = cv2.resize(cells.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
    # canvas -> small frame: invert to_canvas, then scale the frame down by out_step
    inv = cv2.invertAffineTransform(to_canvas)
    down = np.array([[1 / out_step, 0, 0], [0, 1 / out_step, 0], [0, 0, 1]])
    m = (down @ np.vstack([inv, [0, 0, 1]]))[:2]
    size = (max(1, fw // out_step), max(1, fh // out_step))
    return cv2.warpAffine(up, m, size, flags=cv2.INTER_LINEAR, borderValue=0.0)


def regions_from_heatmap(heatmap: np.ndarray, frame_wh: tuple[int, int], *, threshold: float = 0.5,
                         max_regions: int = 10) -> tuple[Region, ...]:
    """Connected areas above `threshold` -> boxes in original pixels, strongest first."""
    fw, fh = frame_wh
    hh, hw = heatmap.shape
    sx, sy = fw / hw, fh / hh
    mask = (heatmap >= threshold).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    regions = []
    for i in range(1, n):
        x, y, w, h, _area = (int(v) for v in stats[i])
        peak = float(heatmap[labels == i].max())
        regions.append(Region(x=round(x * sx), y=round(y * sy), w=max(1, round(w * sx)),
                              h=max(1, round(h * sy)), score=round(peak, 4)))
    regions.sort(key=lambda r: -r.score)
    return tuple(regions[:max_regions])


def peak_point(heatmap: np.ndarray, frame_wh: tuple[int, int]) -> tuple[float, float]:
    """Centre of the hottest heatmap pixel, in original-frame pixels."""
    hh, hw = heatmap.shape
    iy, ix = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return (ix + 0.5) * frame_wh[0] / hw, (iy + 0.5) * frame_wh[1] / hh


def overlay(image: np.ndarray, heatmap: np.ndarray | None, regions: tuple[Region, ...] = ()) -> np.ndarray:
    """The UI's highlight: heat tint where the model looks, boxes around regions."""
    out = image.copy()
    h, w = image.shape[:2]
    if heatmap is not None:
        heat = cv2.resize(np.clip(heatmap, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
        alpha = (np.clip((heat - 0.2) / 0.8, 0, 1) * 0.55)[..., None]
        out = (out * (1 - alpha) + colour * alpha).astype(np.uint8)
    thickness = max(2, round(min(h, w) / 300))
    for r in regions:
        cv2.rectangle(out, (r.x, r.y), (r.x + r.w, r.y + r.h), (0, 0, 255), thickness)
        cv2.putText(out, f"{r.score:.2f}", (r.x, max(12, r.y - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                    thickness * 0.4, (0, 0, 255), thickness)
    return out
