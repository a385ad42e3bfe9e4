"""Gradual ramp of a candidate model: the plan, the evidence, and the decision. Pure (no I/O, no clock).

A plan is a list of steps: shadow (fraction 0: the candidate scores, never decides), canary shares, and
a last step at 1.0 (promotion). A step advances only when its evidence holds: enough items in the
step, the candidate's disagreement with inspectors and the audited escape rate on the items it
decided both *proven* within the limits (one-sided upper bound at `confidence`), and no open alarm.
It rolls back when the evidence proves a limit broken (one-sided lower bound above it) or on an open
alarm; otherwise it holds. Rolling back is the safe side, so an alarm alone is enough; advancing
needs proof, so too little evidence holds.

Estimates are weighted: a blind audit label weighs 1 / the audit rate its item was drawn at (the
ramp audits the candidate's decisions at a higher rate; the weights keep every estimate unbiased).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from inspection.core.stats import effective_sample_size, one_sided_upper, weighted_rate

__all__ = [
    "Advance",
    "DEFAULT_PLAN",
    "Evidence",
    "Hold",
    "LabelledItem",
    "RampError",
    "RampPlan",
    "RampState",
    "RampStep",
    "Rollback",
    "RateBound",
    "decide",
    "evidence_from_items",
    "rate_bound",
]


class RampError(ValueError):
    """A plan that must not be stored or run."""


@dataclass(frozen=True)
class RampStep:
    fraction: float  # 0: shadow; (0, 1): canary share; 1: promotion (the last step only)
    min_items: int = 200  # items the candidate scored (shadow) or decided (canary) in this step
    max_disagreement: float = 0.10  # candidate call vs the inspector's label, on labelled items
    max_escape_upper: float = 0.02  # audited escape rate among the candidate's passes, upper bound

    def validate(self) -> RampStep:
        if not (math.isfinite(self.fraction) and 0.0 <= self.fraction <= 1.0):
            raise RampError(f"step fraction must be within [0, 1], got {self.fraction}")
        if not isinstance(self.min_items, int) or self.min_items < 0:
            raise RampError(f"min_items must be a non-negative integer, got {self.min_items!r}")
        for name in ("max_disagreement", "max_escape_upper"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 < v < 1.0):
                raise RampError(f"{name} must be within (0, 1), got {v}")
        return self

    @property
    def label(self) -> str:
        if self.fraction <= 0.0:
            return "shadow"
        return "100 %" if self.fraction >= 1.0 else f"{self.fraction:.0%}".replace("%", " %")


def _default_steps() -> tuple[RampStep, ...]:
    return (
        RampStep(0.0, min_items=200),
        RampStep(0.05, min_items=200),
        RampStep(0.25, min_items=400),
        RampStep(0.50, min_items=800),
        RampStep(1.0, min_items=0),
    )


@dataclass(frozen=True)
class RampPlan:
    steps: tuple[RampStep, ...] = field(default_factory=_default_steps)
    audit_rate: float = 0.25  # blind audit rate of the candidate's automatic decisions during the ramp
    confidence: float = 0.95  # of the one-sided bounds

    def validate(self) -> RampPlan:
        if len(self.steps) < 2:
            raise RampError("a ramp needs at least two steps (one before promotion, and promotion)")
        for s in self.steps:
            s.validate()
        fractions = [s.fraction for s in self.steps]
        if any(b <= a for a, b in zip(fractions, fractions[1:], strict=False)):
            raise RampError(f"step fractions must increase strictly, got {fractions}")
        if fractions[-1] != 1.0 or 1.0 in fractions[:-1]:
            raise RampError("the last step, and only the last, must be 1.0 (promotion)")
        if not (math.isfinite(self.audit_rate) and 0.0 < self.audit_rate <= 1.0):
            raise RampError(f"audit_rate must be within (0, 1], got {self.audit_rate}")
        if not (0.5 <= self.confidence < 1.0):
            raise RampError(f"confidence must be within [0.5, 1), got {self.confidence}")
        return self

    def to_json(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "audit_rate": self.audit_rate,
                "confidence": self.confidence}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> RampPlan:
        d = json.loads(data) if isinstance(data, str) else dict(data)
        unknown = set(d) - {"steps", "audit_rate", "confidence"}
        if unknown:
            raise RampError(f"unknown plan keys: {sorted(unknown)}")
        try:
            steps = tuple(RampStep(**s) for s in d.get("steps", [asdict(s) for s in _default_steps()]))
            plan = cls(steps, float(d.get("audit_rate", 0.25)), float(d.get("confidence", 0.95)))
        except (TypeError, ValueError) as exc:
            raise RampError(f"invalid ramp plan: {exc}") from None
        return plan.validate()


DEFAULT_PLAN = RampPlan().validate()


@dataclass(frozen=True)
class RateBound:
    rate: float | None  # weighted point estimate; None without items
    n: int  # items
    n_eff: float  # Kish effective sample size
    lower: float  # one-sided lower bound: the rate is above this with `confidence`
    upper: float  # one-sided upper bound


def rate_bound(events: Sequence[bool], weights: Sequence[float], *, confidence: float) -> RateBound:
    """Weighted rate with one-sided exact bounds computed on the effective sample size."""
    w = np.asarray(weights, dtype=np.float64)
    e = np.asarray(events, dtype=bool)
    if w.size == 0 or float(w.sum()) <= 0:
        return RateBound(None, 0, 0.0, 0.0, 1.0)
    rate = weighted_rate(w[e], w)
    n_eff = effective_sample_size(w)
    k = rate * n_eff
    upper = one_sided_upper(k, n_eff, confidence=confidence)
    # lower bound: 1 - the upper bound of the complementary rate
    lower = 1.0 - one_sided_upper(n_eff - k, n_eff, confidence=confidence)
    return RateBound(rate, int(w.size), n_eff, max(0.0, lower), upper)


@dataclass(frozen=True)
class LabelledItem:
    """One item the candidate scored in the ramp, with its live label (if any) and weight."""

    candidate_scratch: bool  # the candidate's call (score >= 0.5)
    passed: bool  # the candidate decided it and passed it automatically
    label: str | None  # scratch | ok | None (no label yet)
    weight: float = 1.0  # 1 / audit rate for a blind audit label, 1 for a person's decision


@dataclass(frozen=True)
class Evidence:
    items: int  # scored (shadow) or decided (canary) by the candidate in the current step
    disagreement: RateBound
    escape: RateBound  # scratch among the candidate's audited passes
    open_alarms: tuple[str, ...] = ()  # short descriptions

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "disagreement": asdict(self.disagreement), "escape": asdict(self.escape),
                "open_alarms": list(self.open_alarms)}  # fmt: skip


def evidence_from_items(
    step_items: int, labelled: Sequence[LabelledItem], *, confidence: float, open_alarms: Sequence[str] = ()
) -> Evidence:
    with_label = [x for x in labelled if x.label in ("scratch", "ok")]
    dis = rate_bound([x.candidate_scratch != (x.label == "scratch") for x in with_label],
                     [x.weight for x in with_label], confidence=confidence)  # fmt: skip
    passes = [x for x in with_label if x.passed]
    esc = rate_bound([x.label == "scratch" for x in passes], [x.weight for x in passes], confidence=confidence)
    return Evidence(step_items, dis, esc, tuple(open_alarms))


RampStatus = Literal["running", "paused", "completed", "rolled_back", "aborted"]


@dataclass(frozen=True)
class RampState:
    step: int  # index into plan.steps of the step running now
    status: RampStatus = "running"


@dataclass(frozen=True)
class Advance:
    to_step: int
    reasons: tuple[str, ...]
    kind: Literal["advance"] = "advance"


@dataclass(frozen=True)
class Hold:
    reasons: tuple[str, ...]
    kind: Literal["hold"] = "hold"


@dataclass(frozen=True)
class Rollback:
    reasons: tuple[str, ...]
    kind: Literal["rollback"] = "rollback"


Decision = Advance | Hold | Rollback


def _breaches(step: RampStep, ev: Evidence) -> list[str]:
    out = [f"open alarm: {a}" for a in ev.open_alarms]
    if ev.escape.n and ev.escape.lower > step.max_escape_upper:
        out.append(f"escape rate {ev.escape.rate:.4f} is above the limit {step.max_escape_upper} "
                   f"(lower bound {ev.escape.lower:.4f}, {ev.escape.n} audited passes)")  # fmt: skip
    if ev.disagreement.n and ev.disagreement.lower > step.max_disagreement:
        out.append(f"disagreement with inspectors {ev.disagreement.rate:.3f} is above the limit "
                   f"{step.max_disagreement} (lower bound {ev.disagreement.lower:.3f})")  # fmt: skip
    return out


def _missing(step: RampStep, ev: Evidence) -> list[str]:
    out = []
    if ev.items < step.min_items:
        out.append(f"{ev.items} of {step.min_items} items in this step")
    if ev.disagreement.upper > step.max_disagreement:
        out.append(f"disagreement upper bound {ev.disagreement.upper:.3f} > {step.max_disagreement} "
                   f"({ev.disagreement.n} labelled items)")  # fmt: skip
    if ev.escape.upper > step.max_escape_upper:
        out.append(f"escape upper bound {ev.escape.upper:.4f} > {step.max_escape_upper} "
                   f"({ev.escape.n} audited passes)")  # fmt: skip
    return out


def decide(plan: RampPlan, state: RampState, evidence: Evidence) -> Decision:
    """What the ramp does next. The limits checked are the current step's; the escape limit applies
    from the first canary step on (in shadow the candidate decides nothing, so nothing is audited)."""
    if state.status != "running":
        return Hold((f"ramp is {state.status}",))
    if not (0 <= state.step < len(plan.steps) - 1):
        return Hold(("ramp has no step left to run",))
    step = plan.steps[state.step]
    breaches = _breaches(step, evidence)
    if breaches:
        return Rollback(tuple(breaches))
    missing = _missing(step, evidence)
    if step.fraction <= 0.0:  # shadow: no decided items, so no audited escapes to require
        missing = [m for m in missing if not m.startswith("escape")]
    if missing:
        return Hold(tuple(missing))
    nxt = state.step + 1
    return Advance(nxt, (f"step {step.label} complete: {evidence.items} items, disagreement ≤ "
                         f"{evidence.disagreement.upper:.3f}, escape ≤ {evidence.escape.upper:.4f}",))  # fmt: skip
