"""route(prediction, policy) -> Route. Pure: no I/O, no clock, no randomness beyond the image hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from inspection.core.domain import AutomationLevel, Label, Policy, Prediction, Route, RouteKind
from inspection.core.gate import GateFailure


def audit_draw(image_hash: str, *, seed: int) -> float:
    """A uniform number in [0, 1) fixed by (seed, image hash): the same item always draws the same."""
    digest = hashlib.sha256(f"{seed}:{image_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def gate_reason(failures: Sequence[GateFailure]) -> str:
    return "domain gate: " + "; ".join(f.reason for f in failures)


def route(
    prediction: Prediction | None, policy: Policy, *, image_hash: str = "", gate: Sequence[GateFailure] = ()
) -> Route:
    """Where one item goes. `gate`: the domain gate's failures for the image (core.gate.check); any
    failure forbids an automatic pass or reject, whatever the score."""
    level = policy.level
    if level is AutomationLevel.HUMAN_ONLY:
        return Route(RouteKind.REVIEW, None, show_model=False, reason="human_only: a person decides")
    if prediction is None or not prediction.valid:
        # Fail-safe: never decide automatically without a valid model output.
        why = "no model output" if prediction is None else (prediction.error or "invalid score")
        return Route(RouteKind.REVIEW, None, show_model=False, reason=f"fail-safe: {why}")
    if level is AutomationLevel.SHADOW:
        return Route(RouteKind.REVIEW, None, show_model=False, reason="shadow: model hidden")
    if level is AutomationLevel.AI_ASSIST:
        return Route(RouteKind.REVIEW, None, show_model=True, reason="ai_assist: person decides")

    if gate:
        # Outside the model's domain a confident score means nothing: a person decides, without the
        # model's call to anchor them (it is still stored for engineers).
        return Route(RouteKind.REVIEW, None, show_model=False, reason=gate_reason(gate))

    score = prediction.score
    assert score is not None  # guaranteed by prediction.valid
    if score <= policy.pass_below:
        kind, label = RouteKind.AUTO_PASS, Label.OK
        reason = f"score {score:.4f} <= pass_below {policy.pass_below}"
    elif level is AutomationLevel.FULL:
        # Full automation never passes a doubtful phone: everything not confidently OK is rejected.
        kind, label = RouteKind.AUTO_REJECT, Label.SCRATCH
        reason = f"full: score {score:.4f} > pass_below {policy.pass_below}"
    elif score >= policy.reject_above:
        kind, label = RouteKind.AUTO_REJECT, Label.SCRATCH
        reason = f"score {score:.4f} >= reject_above {policy.reject_above}"
    else:
        return Route(RouteKind.REVIEW, None, show_model=True, reason=f"uncertain: score {score:.4f}")
    audit = audit_draw(image_hash, seed=policy.audit_seed) < policy.audit_rate
    return Route(kind, label, show_model=False, audit=audit, reason=reason)
