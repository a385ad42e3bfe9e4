"""Domain values shared by every layer. Standard library only: no numpy, torch, sqlmodel or gradio."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class AutomationLevel(StrEnum):
    HUMAN_ONLY = "human_only"  # model does not run; a person decides every item
    SHADOW = "shadow"  # model runs hidden; a person decides; agreement measured in the background
    AI_ASSIST = "ai_assist"  # a person decides, seeing the model's score and highlight
    PARTIAL = "partial"  # model decides when confident, else a person (with highlight)
    FULL = "full"  # model decides every item; people see audit samples only

    @property
    def runs_model(self) -> bool:
        return self is not AutomationLevel.HUMAN_ONLY


class Label(StrEnum):
    SCRATCH = "scratch"
    OK = "ok"


class RouteKind(StrEnum):
    AUTO_PASS = "auto_pass"
    AUTO_REJECT = "auto_reject"
    REVIEW = "review"


class DecidedBy(StrEnum):
    MODEL = "model"
    INSPECTOR = "inspector"


class Role(StrEnum):
    INSPECTOR = "inspector"
    ENGINEER = "engineer"
    ADMIN = "admin"


class LocalisationMode(StrEnum):
    AUTO = "auto"  # find the phone in the frame (default)
    ROI = "roi"  # a fixed rectangle of the frame is the inspected region
    FRAME = "frame"  # the whole frame is the inspected region


@dataclass(frozen=True)
class Localisation:
    """How a station finds the inspected region. `roi` = (x, y, w, h) as fractions (0-1) of the frame.

    Never says "no phone found" in roi or frame mode. None (at call sites) means auto.
    """

    mode: LocalisationMode = LocalisationMode.AUTO
    roi: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        try:
            mode = LocalisationMode(self.mode)
        except ValueError as exc:
            raise ValueError(f"unknown localisation mode {self.mode!r} (auto, roi or frame)") from exc
        object.__setattr__(self, "mode", mode)
        if mode is LocalisationMode.ROI:
            if self.roi is None:
                raise ValueError("roi mode needs a rectangle (x, y, w, h) as fractions of the frame")
            if len(self.roi) != 4:
                raise ValueError("roi must be four numbers (x, y, w, h)")
            x, y, w, h = (float(v) for v in self.roi)
            if not all(math.isfinite(v) for v in (x, y, w, h)):
                raise ValueError("roi values must be finite numbers")
            if w <= 0 or h <= 0:
                raise ValueError("roi width and height must be positive")
            if x < 0 or y < 0 or x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
                raise ValueError("roi must lie within the frame: fractions 0-1 with x + w <= 1 and y + h <= 1")
            object.__setattr__(self, "roi", (x, y, w, h))
        elif self.roi is not None:
            raise ValueError(f"{mode.value} mode takes no roi")


class PolicyError(ValueError):
    """A policy that must not be stored (thresholds crossed, rates out of range, unknown level)."""


@dataclass(frozen=True)
class Region:
    """A highlighted area in original-image pixel coordinates; score is the peak cell probability."""

    x: int
    y: int
    w: int
    h: int
    score: float


@dataclass(frozen=True)
class Prediction:
    """One model's output for one image. `score` is None when there is no valid output (see `error`)."""

    model_version: str
    score: float | None
    regions: tuple[Region, ...] = ()
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def valid(self) -> bool:
        s = self.score
        # NaN fails both comparisons, so a NaN score is never valid.
        return self.error is None and s is not None and 0.0 <= s <= 1.0


@dataclass(frozen=True)
class Policy:
    """A station's automation policy. Versioned: every change is a new row with who/why."""

    station: str
    level: AutomationLevel = AutomationLevel.HUMAN_ONLY
    pass_below: float = 0.05  # score <= pass_below passes automatically (partial, full)
    reject_above: float = 0.95  # score >= reject_above rejects automatically (partial)
    audit_rate: float = 0.02  # share of automatic decisions also sent to a blind review
    version: int = 0
    audit_seed: int = 0

    def validate(self) -> Policy:
        if not isinstance(self.level, AutomationLevel):
            raise PolicyError(f"unknown automation level {self.level!r}")
        for name in ("pass_below", "reject_above", "audit_rate"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise PolicyError(f"{name} must be within [0, 1], got {value}")
        if self.pass_below >= self.reject_above:
            raise PolicyError(
                f"pass_below ({self.pass_below}) must be below reject_above ({self.reject_above})"
            )
        if not self.station.strip():
            raise PolicyError("station must not be empty")
        return self


@dataclass(frozen=True)
class Route:
    """What happens to one item. `label` is set only for automatic decisions."""

    kind: RouteKind
    label: Label | None
    show_model: bool  # may the reviewing inspector see score and highlight?
    audit: bool = False  # automatic decision that is also queued for a blind review
    reason: str = ""

    @property
    def needs_person(self) -> bool:
        return self.kind is RouteKind.REVIEW or self.audit


@dataclass(frozen=True)
class AuditEstimate:
    """A rate estimated from blind audit labels, with a two-sided 95 % interval."""

    events: int
    trials: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class LabelledScore:
    """One item of labelled history: model score, the true label, and its sampling weight.

    weight > 1 up-weights items that stand for many unreviewed ones (audit samples), so that
    reviewing mostly uncertain items does not bias rate estimates.
    """

    score: float
    label: Label
    weight: float = 1.0
    audit: bool = False


@dataclass(frozen=True)
class Inspection:
    """The stored outcome for one image, as the API and CLI report it."""

    id: int
    station: str
    route: RouteKind
    score: float | None
    decided_by: DecidedBy | None
    label: Label | None
    reason: str
    model_version: str | None = None
    policy_version: int | None = None
    image_hash: str = ""
    regions: tuple[Region, ...] = field(default=())
