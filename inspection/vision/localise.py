"""Finding the phone in a frame on any table: several segmentations proposed, the most phone-like kept.

The lab localiser thresholded grey levels (Otsu) and took the dark side: it assumes dark glass on a
lighter table and fails on dark tables (the table itself becomes "the phone"). Here each of these cues
proposes regions, every region is fitted with a rotated rectangle, and the best fit wins:

1. dark on light (the lab cue, first so that lab frames keep their crops: ties go to it);
2. colour distance from the table, whose colour and spread are estimated on the frame's border (a
   robust median / MAD in Lab), at a few thresholds: any phone colour on any table colour;
3. light on dark (Otsu, bright side): white phones on dark tables;
4. edges: gradient magnitude well above the border's, closed and filled: what is left when the phone
   and the table have the same colour (white on white, black on near-black) but an outline shows.

A region's fit is its rectangularity (area / minimum-area rectangle) times (1 - cut), cut being how much
of it lies on the frame border (a phone cut by the frame edge); regions that span the frame from one
side to the opposite one are close-ups of the screen and count as uncut. Regions must be phone-shaped
(aspect 1.3-3.2) and cover 1-97 % of the frame. Numbers: scripts/bench_localisation.py.

Speed and order (preprocess.locate_phone): `lab_find` first, the lab localiser's one cue with a check
that the scene is the lab's (large, well-fitting dark region far darker than the table and ringed by
table colour): ~1 ms, and lab crops stay exactly what the shipped model was trained on. Otherwise the
cues above at 240 px, then `snap` on the decoded frame: each side of the coarse rectangle moves onto the
outermost sharp step near it (the phone's outline: a white bezel or a coloured body lies outside the
dark display), minus the rim, so that the rectangle is the glass; a few remaps per side, no full-frame
conversion. `band` is the last resort for close-ups whose glass runs off the frame on all sides but two.
Next to all this, the learned localiser (`segment`): where the geometry's rectangle disagrees with the
network's glass mask (IoU < AGREE), or the geometry finds nothing, the rectangle fitted to the mask,
snapped, is the find (preprocess.locate_phone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["AGREE", "Candidate", "Rect", "agreement", "band", "best_candidate", "candidate_of", "candidates",
           "lab_find", "learned", "refine", "snap"]

SEARCH_SIDE = 240  # px: long side of the searched copy (the lab localiser's size)
MIN_SHARE, MAX_SHARE = 0.003, 0.97
MIN_ASPECT, MAX_ASPECT = 1.3, 3.2
MIN_FILL = 0.5  # region area / its rectangle's: a phone's is ~0.95; under half is no rectangle at all
REFINE_SIDE = 360  # px: long side of the crop around a coarse find when it is refined
TIE = 0.03  # a later cue must beat an earlier one by this much in fit to replace it
LAB_FIT, LAB_RING, LAB_CONTRAST = 0.86, 28.0, 60.0  # lab_find: lab scenes (300) measure >= 0.865, <= ~25, >= ~70
LAB_MAX_SHARE = 0.4  # lab_find: lab phones cover 16-20 % of the frame; a close-up's glass 50-90 %
MIN_SUPPORT = 2.0  # edge_support below which a region has no outline (phones: 3-40, texture blobs: ~0-1)


@dataclass(frozen=True)
class Candidate:
    """One proposed region, in the searched copy's pixels."""

    cue: str
    rect: tuple[tuple[float, float], tuple[float, float], float]  # cv2.minAreaRect
    fill: float
    cut: float
    area_share: float
    contour: np.ndarray

    @property
    def aspect(self) -> float:
        w, h = self.rect[1]
        return max(w, h) / max(min(w, h), 1e-6)

    @property
    def fit(self) -> float:
        return max(0.0, self.fill * (1.0 - min(1.0, self.cut)))


def _border_run(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Pixels of `mask` on the top, bottom, left and right rows/columns of the frame."""
    return (int(np.count_nonzero(mask[0])), int(np.count_nonzero(mask[-1])),
            int(np.count_nonzero(mask[1:-1, 0])), int(np.count_nonzero(mask[1:-1, -1])))


def candidate_of(cue: str, contour: np.ndarray, shape: tuple[int, int], *, check: bool = True) -> Candidate | None:
    """A region's rectangle fit; None when `check` and it is not phone-shaped or sized. Without `check`
    (the lab localiser), touching opposite frame edges is a cut like any other."""
    h, w = shape
    area = float(cv2.contourArea(contour))
    share = area / float(h * w)
    rect = cv2.minAreaRect(contour)
    rw, rh = rect[1]
    short = max(min(rw, rh), 1.0)
    aspect = max(rw, rh) / short
    if check and not (MIN_SHARE <= share <= MAX_SHARE and MIN_ASPECT <= aspect <= MAX_ASPECT):
        return None
    region = np.zeros((h, w), np.uint8)
    cv2.drawContours(region, [contour], -1, 255, thickness=cv2.FILLED)
    top, bottom, left, right = _border_run(region)
    # Spanning the frame (top and bottom, or left and right, each along most of the region's
    # extent there): the camera sees only the screen, the frame edges are not a cut.
    spans = min(top, bottom) > 0.2 * short or min(left, right) > 0.2 * short
    cut = 0.0 if spans and check else (top + bottom + left + right) / short
    fill = min(1.0, area / max(rw * rh, 1e-6))
    if check and fill < MIN_FILL:
        return None
    centre = (float(rect[0][0]), float(rect[0][1]))
    return Candidate(cue, (centre, (rw, rh), rect[2]), fill, cut, share, contour)


def _regions(cue: str, mask: np.ndarray, close: int = 7) -> Iterator[Candidate]:
    """Close small gaps, fill holes, and propose each outer region."""
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((close, close), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:4]:
        cand = candidate_of(cue, contour, mask.shape[:2])
        if cand is not None:
            yield cand


def _table_distance(small: np.ndarray) -> np.ndarray:
    """Per-pixel distance from the table colour in units of the table's own spread (Lab, border-estimated)."""
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2Lab).astype(np.float32)
    ring = np.concatenate([lab[:2].reshape(-1, 3), lab[-2:].reshape(-1, 3),
                           lab[2:-2, :2].reshape(-1, 3), lab[2:-2, -2:].reshape(-1, 3)])
    median = np.median(ring, axis=0)
    spread = 1.4826 * np.median(np.abs(ring - median), axis=0)
    spread = np.maximum(spread, (3.0, 2.0, 2.0))  # sensor noise floor: a flat table is not infinitely tight
    z = (lab - median) / spread
    return np.sqrt((z * z).sum(axis=2))


def _edges(grey: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    ring = np.concatenate([mag[:3].ravel(), mag[-3:].ravel(), mag[:, :3].ravel(), mag[:, -3:].ravel()])
    level = float(np.percentile(ring, 90)) * 2.5 + 4.0  # well above the table's own texture
    return np.where(mag > level, 255, 0).astype(np.uint8)


def candidates(small: np.ndarray) -> Iterator[Candidate]:
    """All proposals for a searched copy (BGR uint8, long side ~SEARCH_SIDE), in cue order."""
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, dark = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    yield from _regions("dark", dark)
    dist = _table_distance(cv2.GaussianBlur(small, (5, 5), 0))
    for t in (4.0, 8.0, 16.0):
        yield from _regions(f"table>{t:g}", np.where(dist > t, 255, 0).astype(np.uint8))
    _, light = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    yield from _regions("light", light)
    yield from _regions("edges", _edges(grey), close=9)


def lab_find(small: np.ndarray) -> Candidate | None:
    """The lab's case, found with the lab localiser's one cue (~1 ms): a large (>= 48 px across), well
    fitting (>= 0.93) dark region, no larger than a lab phone (a close-up's display is larger), far darker
    than the table (the border), ringed by table-coloured pixels (not by a white bezel or a body of
    another colour). None: not the lab's case, search on."""
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, dark = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    cand = next(_regions("dark", dark), None)
    if cand is None or cand.fit < LAB_FIT or min(cand.rect[1]) < 48 or cand.area_share > LAB_MAX_SHARE:
        return None
    h, w = small.shape[:2]
    table = np.median(np.concatenate([small[:2].reshape(-1, 3), small[-2:].reshape(-1, 3),
                                      small[:, :2].reshape(-1, 3), small[:, -2:].reshape(-1, 3)]), axis=0)
    (cx, cy), (rw, rh), ang = cand.rect
    short = min(rw, rh)
    near, far = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    for mask, grow in ((near, 0.04), (far, 0.16)):
        box = cv2.boxPoints(((cx, cy), (rw + 2 * grow * short, rh + 2 * grow * short), ang))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 255)
    ring = cv2.mean(small, mask=cv2.subtract(far, near))[:3]
    inside = cv2.mean(small, mask=cv2.erode(near, np.ones((9, 9), np.uint8)))[:3]
    ring_off = float(np.linalg.norm(np.array(ring) - table))
    contrast = float(np.linalg.norm(np.array(inside) - table))
    if ring_off > LAB_RING or contrast < LAB_CONTRAST:
        return None
    return cand


def _contains(outer: Candidate, inner: Candidate) -> bool:
    """`inner`'s centre lies inside `outer`'s rectangle and `outer` is larger (but not the whole scene)."""
    box = cv2.boxPoints(outer.rect).astype(np.float32).reshape(-1, 1, 2)
    centre = (float(inner.rect[0][0]), float(inner.rect[0][1]))
    return (cv2.pointPolygonTest(box, centre, False) > 0
            and 1.08 * inner.area_share < outer.area_share < 2.2 * inner.area_share)


def _outline_points(shape: tuple[int, ...], cand: Candidate) -> np.ndarray:
    """Points along the candidate's rectangle that lie inside the frame (sides on its border excluded)."""
    h, w = shape[:2]
    pts = cv2.boxPoints(cand.rect)
    samples = []
    for a, b in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        t = np.linspace(0.05, 0.95, 24)[:, None]
        line = a + (b - a) * t
        inside = (line[:, 0] >= 2) & (line[:, 0] <= w - 3) & (line[:, 1] >= 2) & (line[:, 1] <= h - 3)
        samples.append(line[inside])
    return np.concatenate(samples)


def outline_measurable(shape: tuple[int, ...], cand: Candidate) -> bool:
    """Whether enough of the candidate's outline lies inside the frame for edge_support to mean anything
    (a close-up's glass can reach past every edge of the frame)."""
    return len(_outline_points(shape, cand)) >= 8


def edge_support(grad: np.ndarray, cand: Candidate, level: float | None = None) -> float:
    """Mean gradient magnitude (max within 1 px) along the candidate's rectangle, over the frame's median
    gradient: a phone's outline is a sharp step (>> 1); a soft shadow's edge or a texture blob's is not.
    Sides on the frame border are skipped (a close-up's frame edge is no outline)."""
    pts_in = _outline_points(grad.shape, cand)
    if len(pts_in) < 8:
        return 0.0
    xs, ys = np.round(pts_in[:, 0]).astype(int), np.round(pts_in[:, 1]).astype(int)
    if level is None:
        level = float(np.median(grad))
    return float(grad[ys, xs].mean()) / (level + 1.0)


def gradient(small: np.ndarray) -> np.ndarray:
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0)
    mag = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))
    return cv2.dilate(mag, np.ones((3, 3), np.uint8))


def best_candidate(small: np.ndarray, keep: Callable[[Candidate], bool] | None = None) -> Candidate | None:
    """The most phone-like proposal (of those `keep` accepts); earlier cues win ties (see TIE). A display
    found inside a white bezel, or a glass inside a body of another colour, gives way to the rectangle
    around it when that fits nearly as well and its outline is about as sharp: the phone is the outermost
    phone-shaped region (a soft shadow around the phone is not: its edge is blurred)."""
    grad = gradient(small)
    level = float(np.median(grad))
    # A phone's outline is a sharp step somewhere inside the frame; a blob of table texture, or a region
    # whose every side is the frame border, shows none: nothing there to call a phone.
    found = [c for c in candidates(small)
             if (keep is None or keep(c)) and edge_support(grad, c, level) >= MIN_SUPPORT]
    best: Candidate | None = None
    for cand in found:
        if best is None or cand.fit > best.fit + TIE:
            best = cand
    if best is None:
        return None
    while True:
        inner, sharp = best, 0.85 * edge_support(grad, best, level)
        outer = [c for c in found if c.fit >= inner.fit - 2 * TIE and _contains(c, inner)
                 and edge_support(grad, c, level) >= sharp]
        if not outer:
            return best
        best = max(outer, key=lambda c: c.area_share)


Rect = tuple[tuple[float, float], tuple[float, float], float]


def refine(image: np.ndarray, coarse: Candidate, f: float) -> Rect:
    """The coarse rectangle (searched at scale `f`) searched again in a crop around it at a finer scale;
    the coarse rectangle (in image pixels) when nothing consistent is found there."""
    (cx, cy), (rw, rh), ang = coarse.rect
    full: Rect = ((cx / f, cy / f), (rw / f, rh / f), ang)
    h, w = image.shape[:2]
    pad = 0.15 * min(rw, rh) / f + 6 / f
    box = cv2.boxPoints(((cx / f, cy / f), (rw / f + 2 * pad, rh / f + 2 * pad), ang))
    x0, y0 = max(0, int(box[:, 0].min())), max(0, int(box[:, 1].min()))
    x1, y1 = min(w, int(np.ceil(box[:, 0].max())) + 1), min(h, int(np.ceil(box[:, 1].max())) + 1)
    g = min(1.0, REFINE_SIDE / max(x1 - x0, y1 - y0))
    if g <= 1.2 * f:  # no finer view to be had
        return full
    crop = cv2.resize(image[y0:y1, x0:x1], (max(1, round((x1 - x0) * g)), max(1, round((y1 - y0) * g))),
                      interpolation=cv2.INTER_AREA)
    ex, ey = (cx / f - x0) * g, (cy / f - y0) * g
    area = rw * rh / (f * f) * g * g
    short = min(rw, rh) / f * g

    def consistent(c: Candidate) -> bool:
        (ux, uy), (uw, uh), _ = c.rect
        return math.hypot(ux - ex, uy - ey) < 0.15 * short and 0.7 < uw * uh / area < 1.4

    fine = best_candidate(crop, consistent)
    if fine is None:
        return full
    (ux, uy), (uw, uh), ua = fine.rect
    return ((ux / g + x0, uy / g + y0), (uw / g, uh / g), ua)


# ---------------------------------------------------------------------------------------------
# snapping a coarse rectangle's sides onto the phone's outline

SNAP_IN, SNAP_OUT = 0.14, 0.16  # search window per side, as shares of the short side (inwards, outwards)
SNAP_SEGMENTS, SNAP_TAPS = 3, 10  # per side: segments (each gives one edge point), samples along each
SNAP_STEP = 0.5  # px between offsets along a side's normal
SNAP_GAP = 3  # steps (1.5 px) either side of an offset: the step detector's half width
SNAP_REL, SNAP_FLOOR = 0.4, 10.0  # an edge: >= this share of the side's strongest, and >= this many levels
RIM_PX, RIM_SHARE = 0.6, 0.01  # the glass edge inside the outline: this many px + this share of the short side


def _edge_offset(profile: np.ndarray, valid: np.ndarray) -> float | None:
    """Offset index of the outermost sharp step in one segment's mean profile (offsets x channels).

    Outermost: a white bezel or a coloured body lies outside the dark display; the phone's outline is the
    last sharp step before the table. A soft shadow's edge is too gradual for a 3 px step detector."""
    g = SNAP_GAP
    if int(valid.sum()) < 2 * g + 3:
        return None
    e = np.linalg.norm(profile[2 * g:] - profile[:-2 * g], axis=1)
    ok = valid[2 * g:] & valid[:-2 * g]
    e = np.where(ok, e, 0.0)
    top = float(e.max())
    if top < SNAP_FLOOR:
        return None
    strong = np.flatnonzero(e >= SNAP_REL * top)
    # the outermost run of strong steps (a blurred edge is a run, not a point): its strongest offset
    start = int(strong[-1])
    while start > 0 and e[start - 1] >= SNAP_REL * top:
        start -= 1
    return float(start + int(np.argmax(e[start:int(strong[-1]) + 1])) + g)


def _side_line(image: np.ndarray, a: np.ndarray, b: np.ndarray, centre: np.ndarray,
               short: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The side a-b moved onto the outline: (point, unit direction), or None to keep it."""
    h, w = image.shape[:2]
    t = (b - a) / max(float(np.hypot(*(b - a))), 1e-6)
    n = np.array([t[1], -t[0]])
    mid = (a + b) / 2
    if float(np.dot(mid - centre, n)) < 0:
        n = -n
    offs = np.arange(-SNAP_IN * short - 3, SNAP_OUT * short + 4, SNAP_STEP, dtype=np.float32)
    length = float(np.hypot(*(b - a)))
    seg = np.linspace(-0.36, 0.36, SNAP_SEGMENTS * SNAP_TAPS, dtype=np.float32).reshape(SNAP_SEGMENTS, SNAP_TAPS)
    s = (seg * length).reshape(-1)
    px = mid[0] + t[0] * s[None, :] + n[0] * offs[:, None]
    py = mid[1] + t[1] * s[None, :] + n[1] * offs[:, None]
    inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
    samples = cv2.remap(image, px.astype(np.float32), py.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    points = []
    for k in range(SNAP_SEGMENTS):
        cols = slice(k * SNAP_TAPS, (k + 1) * SNAP_TAPS)
        valid = inside[:, cols].all(axis=1)
        found = _edge_offset(samples[:, cols].mean(axis=1), valid)
        if found is not None:
            d = float(offs[0]) + found * SNAP_STEP
            points.append(mid + t * float(seg[k].mean() * length) + n * d)
    if len(points) < 2:
        return None
    # The outermost step is the phone's outline; the glass lies inside its metal rim (the generator's
    # rims: 0.5-2 % of the width; measured: the outline sits ~1-2 px outside the glass at 960x540).
    pts = np.array(points) - n * (RIM_PX + RIM_SHARE * short)
    p0 = pts.mean(axis=0)
    if len(pts) == 2:
        return p0, t
    _, _, vt = np.linalg.svd(pts - p0)
    d = vt[0] if float(np.dot(vt[0], t)) >= 0 else -vt[0]
    if float(np.dot(d, t)) < 0.995:  # more than ~6 deg off the coarse side: an odd edge, keep the side
        return p0, t
    return p0, d


def _meet(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (p, d), (q, e) = l1, l2
    m = np.array([[d[0], -e[0]], [d[1], -e[1]]])
    if abs(float(np.linalg.det(m))) < 1e-6:
        return (p + q) / 2
    s = np.linalg.solve(m, q - p)
    return p + d * s[0]


def snap(image: np.ndarray, rect: Rect) -> Rect:
    """Each side of `rect` (image pixels) moved onto the outermost sharp step near it (the phone's
    outline), its tilt re-measured; sides along the frame border, and sides with no clear step, stay."""
    h, w = image.shape[:2]
    pts = cv2.boxPoints(rect).astype(np.float64)
    centre = np.array(rect[0], np.float64)
    short = float(min(rect[1]))
    lines = []
    for k in range(4):
        a, b = pts[k], pts[(k + 1) % 4]
        t = (b - a) / max(float(np.hypot(*(b - a))), 1e-6)
        on_border = min(abs(a[0]) + abs(b[0]), abs(a[1]) + abs(b[1]),
                        abs(w - 1 - a[0]) + abs(w - 1 - b[0]), abs(h - 1 - a[1]) + abs(h - 1 - b[1])) < 6
        found = None if on_border else _side_line(image, a, b, centre, short)
        lines.append(found if found is not None else (a, t))
    corners = np.array([_meet(lines[k - 1], lines[k]) for k in range(4)], np.float32)
    new = cv2.minAreaRect(corners)
    ratio = new[1][0] * new[1][1] / max(rect[1][0] * rect[1][1], 1e-6)
    if not 0.6 < ratio < 1.8:
        return rect
    return ((float(new[0][0]), float(new[0][1])), (float(new[1][0]), float(new[1][1])), float(new[2]))


BAND_FLOOR = 12.0  # grey levels: a glass edge's step on the row (column) median profile; texture stays < ~4


def _profile_step(profile: np.ndarray, lo: int, hi: int) -> int | None:
    """Index of the strongest 2-px step of `profile` within [lo, hi), or None when none clears BAND_FLOOR."""
    e = np.abs(profile[lo + 2:hi] - profile[lo:hi - 2])
    if e.size == 0 or float(e.max()) < BAND_FLOOR:
        return None
    return lo + 1 + int(np.argmax(e))


def band(small: np.ndarray) -> Candidate | None:
    """A close-up whose glass runs off the frame (no outline anywhere, so no region): the glass edges
    that do show are steps of the frame's row or column median profile near the frame border (outer 30 %);
    sides with no step are the frame border. None unless at least two such edges are seen."""
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (3, 3), 0).astype(np.float32)
    h, w = grey.shape
    rows = np.median(grey[:, w // 5:w - w // 5], axis=1)
    cols = np.median(grey[h // 5:h - h // 5, :], axis=0)
    top, bottom = _profile_step(rows, 0, int(0.3 * h)), _profile_step(rows, int(0.7 * h), h)
    left, right = _profile_step(cols, 0, int(0.3 * w)), _profile_step(cols, int(0.7 * w), w)
    if sum(v is not None for v in (top, bottom, left, right)) < 2:
        return None
    x0, x1 = (left or 0), (right or w)
    y0, y1 = (top or 0), (bottom or h)
    contour = np.array([[[x0, y0]], [[x1, y0]], [[x1, y1]], [[x0, y1]]], np.int32)
    (cx, cy), (rw, rh), ang = cv2.minAreaRect(contour)
    if not 1.0 <= max(rw, rh) / max(min(rw, rh), 1.0) <= MAX_ASPECT:
        return None
    return Candidate("band", ((cx, cy), (rw, rh), ang), 1.0, 0.0, (x1 - x0) * (y1 - y0) / float(h * w), contour)


# ---------------------------------------------------------------------------------------------
# the learned localiser (segment.py) next to the geometry

# IoU of the geometry's rectangle with the network's glass mask from which the geometry stays (its edges
# are sharper); below it the network's rectangle wins. Dev seeds 555 (100 scenes each) and 556 (200), not
# the bench's: IoU>=0.9 share varied 0.92/0.885 and closeup 0.93/0.935 at 0.5; at 0.8 0.88/0.825 and
# 0.94/0.935; geometry alone 0.91/0.89 and 0.87/0.89; network alone 0.86/0.80 and 0.95/0.94. The network
# decides where the geometry is lost (close-ups, nothing found); where both see a phone the geometry wins.
AGREE = 0.5


def _mask_of(rect: Rect, shape: tuple[int, int], f: float) -> np.ndarray:
    (cx, cy), (rw, rh), ang = rect
    out = np.zeros(shape, np.uint8)
    pts = cv2.boxPoints(((cx * f, cy * f), (rw * f, rh * f), ang))
    cv2.fillPoly(out, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    return out


def agreement(rect: Rect, glass: np.ndarray, f: float) -> float:
    """IoU of a rectangle (image pixels; the searched copy is at scale `f`) with a {0,255} mask."""
    box = _mask_of(rect, glass.shape[:2], f) > 0
    seen = glass > 0
    union = np.count_nonzero(box | seen)
    return np.count_nonzero(box & seen) / union if union else 0.0


def learned(small: np.ndarray, prob: np.ndarray) -> tuple[Candidate, np.ndarray] | None:
    """The network's glass: the rectangle fitted to its mask's largest phone-shaped component (the
    fit's fill is how well the mask agrees with the rectangle), and the mask; None when it sees none."""
    mask = np.where(prob > 0.5, 255, 0).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:2]:
        cand = candidate_of("net", contour, small.shape[:2])
        if cand is not None:
            return cand, mask
    return None
