"""Image -> network input and back: find the phone, warp it upright onto a fixed canvas, and map the
network's cell scores back onto the original frame as a heatmap and boxes (OpenCV, numpy).

Why a phone crop: scratches are 1-4 px wide on a 1920x1080 frame. Resizing the whole frame to 224 px
(scale 0.12) erases them; the phone fills ~430x920 px of the frame, so warping just the phone onto a
240x512 canvas keeps a scale of ~0.55 (a 2 px scratch stays ~1 px wide) at 2.4x the pixels of 224x224.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from inspection.core.domain import Region

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    fit: PhoneFit | None = None  # how the phone was found ("phone" mode); None for "resize"


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

    @property
    def confidence(self) -> float:
        return max(0.0, self.fill * (1.0 - min(1.0, self.cut)))

    @property
    def aspect(self) -> float:
        return self.size[1] / max(self.size[0], 1e-6)


def _border_run(mask: np.ndarray) -> int:
    """Pixels of `mask` on the frame's outermost rows and columns."""
    return int(
        np.count_nonzero(mask[0]) + np.count_nonzero(mask[-1])
        + np.count_nonzero(mask[1:-1, 0]) + np.count_nonzero(mask[1:-1, -1])
    )


def locate_phone(image: np.ndarray) -> PhoneFit:
    """The phone: the largest dark region on the lighter table, as a rotated rectangle with its fit.
    Works on a 1/4-size grey copy (~2 ms at 960x540). PreprocessError when nothing phone-like is found."""
    h, w = image.shape[:2]
    f = 240.0 / max(h, w)
    small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, dark = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(dark, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        raise PreprocessError("no phone found (no dark object on the table)")
    biggest = max(contours, key=cv2.contourArea)
    contour_area = cv2.contourArea(biggest)
    area_share = contour_area / float(small.shape[0] * small.shape[1])
    rect = cv2.minAreaRect(biggest)
    (cx, cy) = rect[0]
    if not 0.04 <= area_share <= 0.9:
        raise PreprocessError(f"no phone found (dark region covers {area_share:.0%} of the frame)")
    # OpenCV's rectangle angle conventions changed across versions: derive the tilt from the corners.
    pts = cv2.boxPoints(rect)
    e1, e2 = pts[1] - pts[0], pts[2] - pts[1]
    n1, n2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    long_edge, rw, rh = (e1, n2, n1) if n1 >= n2 else (e2, n1, n2)
    # angle of the long edge from the image's vertical axis, folded into (-90, 90]
    angle = float(np.degrees(np.arctan2(long_edge[0], long_edge[1])))
    angle = (angle + 90.0) % 180.0 - 90.0
    angle = -angle  # getRotationMatrix2D turns counter-clockwise for positive angles
    aspect = rh / max(rw, 1e-6)
    if not 1.3 <= aspect <= 3.2:
        raise PreprocessError(f"no phone found (dark region aspect {aspect:.2f})")
    region = np.zeros_like(dark)
    cv2.drawContours(region, [biggest], -1, 255, thickness=cv2.FILLED)
    return PhoneFit(
        centre=(cx / f, cy / f),
        size=(rw / f, rh / f),
        angle=angle,
        fill=float(min(1.0, contour_area / max(rw * rh, 1e-6))),
        cut=_border_run(region) / max(rw, 1.0),
        area_share=float(area_share),
    )


def find_phone(image: np.ndarray) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Rotated rectangle (centre, (w, h), angle) of the phone (see locate_phone)."""
    fit = locate_phone(image)
    return fit.centre, fit.size, fit.angle


def warp(image: np.ndarray, spec: PreprocessSpec, *, scale: float = 1.0) -> Warped:
    """Map `image` (decoded at 1/scale of the original) onto the canvas."""
    ch, cw = spec.canvas_h, spec.canvas_w
    if spec.mode == "resize":
        h, w = image.shape[:2]
        m = np.array([[cw / w, 0, 0], [0, ch / h, 0]], dtype=np.float64)
        fit = None
    else:
        fit = locate_phone(image)
        (cx, cy), (rw, rh), angle = fit.centre, fit.size, fit.angle
        rw, rh = rw * (1 + 2 * spec.margin), rh * (1 + 2 * spec.margin)
        # rotate about the phone centre so it stands upright, then scale its box onto the canvas
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
