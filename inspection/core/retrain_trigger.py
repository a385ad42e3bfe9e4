"""Automatic candidates: when a retrain run starts, and whether its candidate is better. Pure (stdlib only,
no I/O, no clock: the caller passes what it measured).

Start: a station's trigger starts a run when it is enabled, no run of the station is in progress, no
canary or ramp is deciding items (a new candidate would replace the one under evaluation), and one of
its conditions holds, checked in this order: a drift alarm opened since the last run (the most urgent),
at least N new blind labels since the last run, or the last run is at least `every_hours` old. Every
condition counts from the last run, whatever its outcome, so a failed or rejected run does not start
again at once: it waits for new labels, the next period or a new alarm.

Better: candidate and production are scored on the same held-out labels. The candidate is better only
if its AUROC is higher by more than `min_auroc_gain` (ranking: the threshold can move, ranking cannot)
AND it lets through no more of the held-out scratches at the station's operating threshold (score
<= pass_below passes automatically) than production does. Same items, so counts compare directly.
A tie is not better: retraining for nothing must not churn the deployment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

__all__ = [
    "DeployAs",
    "HeldOutMetrics",
    "StartDecision",
    "TriggerError",
    "TriggerInputs",
    "TriggerSettings",
    "Verdict",
    "auroc",
    "heldout_metrics",
    "judge",
    "should_start",
]

DeployAs = Literal["shadow", "ramp"]
TriggerKind = Literal["drift", "labels", "schedule", "manual"]


class TriggerError(ValueError):
    """Settings that must not be stored."""


@dataclass(frozen=True)
class TriggerSettings:
    """One station's retrain trigger. The training options travel in the `params` JSON column."""

    enabled: bool = False
    on_labels: int | None = 200  # new blind labels since the last run (None: never on labels)
    every_hours: float | None = None  # the last run at least this old (None: no schedule)
    on_drift: bool = True  # a drift alarm opened since the last run
    deploy_as: DeployAs = "shadow"  # ramp: the engineer allows a better candidate onto the default ramp plan
    # None: core.schedule's default for the labels at hand (a fine-tune: ~40 optimiser steps in whole epochs)
    epochs: int | None = None
    min_per_class: int = 20
    min_auroc_gain: float = 0.0  # the candidate's AUROC must exceed production's by more than this
    # start from production's weights (fine-tune) rather than ImageNet's: a drifted station has few
    # labels, and production already knows what a scratch is (sim_retrain_drift.py measures both)
    warm_start: bool = True

    def validate(self) -> TriggerSettings:
        if self.on_labels is not None and (not isinstance(self.on_labels, int) or self.on_labels < 1):
            raise TriggerError(f"on_labels must be a positive integer or none, got {self.on_labels!r}")
        if self.every_hours is not None and not (math.isfinite(self.every_hours) and self.every_hours > 0):
            raise TriggerError(f"every_hours must be positive or none, got {self.every_hours!r}")
        if self.deploy_as not in ("shadow", "ramp"):
            raise TriggerError(f"deploy_as must be shadow or ramp, got {self.deploy_as!r}")
        if self.epochs is not None and (not isinstance(self.epochs, int) or not 1 <= self.epochs <= 200):
            raise TriggerError(f"epochs must be within 1..200 or none (the schedule), got {self.epochs!r}")
        if not isinstance(self.min_per_class, int) or self.min_per_class < 2:
            raise TriggerError(f"min_per_class must be at least 2, got {self.min_per_class!r}")
        if not isinstance(self.warm_start, bool):
            raise TriggerError(f"warm_start must be true or false, got {self.warm_start!r}")
        if not (math.isfinite(self.min_auroc_gain) and 0.0 <= self.min_auroc_gain < 1.0):
            raise TriggerError(f"min_auroc_gain must be within [0, 1), got {self.min_auroc_gain!r}")
        if self.enabled and self.on_labels is None and self.every_hours is None and not self.on_drift:
            raise TriggerError("an enabled trigger needs a condition: on_labels, every_hours or on_drift")
        return self

    @property
    def params(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "min_per_class": self.min_per_class, "min_auroc_gain": self.min_auroc_gain,
                "warm_start": self.warm_start}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriggerSettings:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise TriggerError(f"unknown trigger settings: {', '.join(sorted(unknown))}")
        try:
            return replace(cls(), **known).validate()
        except TypeError as exc:
            raise TriggerError(str(exc)) from None


@dataclass(frozen=True)
class TriggerInputs:
    """What the service measured for one station at one moment."""

    new_labels: int  # blind labels since the last run
    hours_since_last: float | None  # since the last run (or since the trigger was enabled: None if unknown)
    drift_alarm: str | None = None  # an open drift alarm opened since the last run (its description)
    run_in_progress: bool = False
    busy: str | None = None  # why a new candidate must not replace the current one (canary, ramp)


@dataclass(frozen=True)
class StartDecision:
    start: bool
    kind: TriggerKind | None
    reason: str


def should_start(settings: TriggerSettings, inputs: TriggerInputs) -> StartDecision:
    """Whether a run starts now, and why (or why not)."""
    if not settings.enabled:
        return StartDecision(False, None, "trigger disabled")
    if inputs.run_in_progress:
        return StartDecision(False, None, "a run of this station is in progress")
    if inputs.busy:
        return StartDecision(False, None, f"not now: {inputs.busy}")
    if settings.on_drift and inputs.drift_alarm:
        return StartDecision(True, "drift", f"drift alarm: {inputs.drift_alarm}")
    if settings.on_labels is not None and inputs.new_labels >= settings.on_labels:
        return StartDecision(True, "labels", f"{inputs.new_labels} new blind labels (trigger at {settings.on_labels})")
    hours = inputs.hours_since_last
    if settings.every_hours is not None and hours is not None and hours >= settings.every_hours:
        return StartDecision(True, "schedule", f"last run {hours:.1f} h ago (every {settings.every_hours:g} h)")
    waiting = []
    if settings.on_labels is not None:
        waiting.append(f"{inputs.new_labels}/{settings.on_labels} new blind labels")
    if settings.every_hours is not None:
        waiting.append(f"{hours or 0.0:.1f}/{settings.every_hours:g} h")
    return StartDecision(False, None, "waiting: " + (", ".join(waiting) or "for a drift alarm"))


# Held-out comparison


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Probability that a scratch scores above an ok item (ties count half); None with one class."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(ranked):  # average ranks over ties
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    pos_rank = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (pos_rank - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


@dataclass(frozen=True)
class HeldOutMetrics:
    n: int
    n_scratch: int
    auroc: float | None
    escapes: int  # held-out scratches scored <= pass_below: passed automatically
    false_rejects: int  # held-out ok items scored >= reject_above
    pass_below: float
    reject_above: float

    @property
    def escape_rate(self) -> float | None:
        return self.escapes / self.n_scratch if self.n_scratch else None

    def to_json(self) -> dict[str, Any]:
        rounded = None if self.auroc is None else round(self.auroc, 5)
        return {**asdict(self), "auroc": rounded, "escape_rate": self.escape_rate}


def heldout_metrics(
    labels: Sequence[bool], scores: Sequence[float], *, pass_below: float, reject_above: float
) -> HeldOutMetrics:
    """Metrics of one model on held-out items (label True: scratch) at the station's thresholds."""
    escapes = sum(1 for y, s in zip(labels, scores, strict=True) if y and s <= pass_below)
    false_rejects = sum(1 for y, s in zip(labels, scores, strict=True) if not y and s >= reject_above)
    return HeldOutMetrics(len(labels), sum(labels), auroc(labels, scores), escapes, false_rejects, pass_below,
                          reject_above)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    better: bool
    reasons: tuple[str, ...]


def judge(candidate: HeldOutMetrics, production: HeldOutMetrics | None, *, min_auroc_gain: float = 0.0) -> Verdict:
    """Better only when the AUROC is higher by more than `min_auroc_gain` and escapes are not more."""
    if production is None:
        return Verdict(False, ("production could not be scored on the held-out labels: nothing to compare",))
    if candidate.n != production.n:
        return Verdict(False, (f"not the same held-out items ({candidate.n} vs {production.n} scored)",))
    c, p = candidate.auroc, production.auroc
    if c is None or p is None:
        return Verdict(False, ("AUROC undefined on the held-out labels (one class only)",))
    reasons = []
    if c - p <= min_auroc_gain:
        gain = f" by more than {min_auroc_gain:g}" if min_auroc_gain else ""
        reasons.append(f"held-out AUROC {c:.4f} not higher than production {p:.4f}{gain}")
    if candidate.escapes > production.escapes:
        reasons.append(
            f"more held-out escapes at pass_below {candidate.pass_below:g}: "
            f"{candidate.escapes} vs {production.escapes} of {candidate.n_scratch} scratches"
        )
    if reasons:
        return Verdict(False, tuple(reasons))
    return Verdict(True, (f"held-out AUROC {c:.4f} > production {p:.4f}; escapes at pass_below "
                          f"{candidate.pass_below:g}: {candidate.escapes} vs {production.escapes} "
                          f"of {candidate.n_scratch}",))  # fmt: skip
