"""The ramp plan, its evidence and the decision (pure)."""

from __future__ import annotations

import pytest

from inspection.core.ramp import (
    DEFAULT_PLAN,
    Advance,
    Hold,
    LabelledItem,
    RampError,
    RampPlan,
    RampState,
    RampStep,
    Rollback,
    decide,
    evidence_from_items,
    rate_bound,
)


def _items(n: int, *, scratch_every: int = 0, passed: bool = True, weight: float = 1.0) -> list[LabelledItem]:
    out = []
    for i in range(n):
        scratch = scratch_every > 0 and i % scratch_every == 0
        out.append(
            LabelledItem(candidate_scratch=False, passed=passed, label="scratch" if scratch else "ok", weight=weight)
        )
    return out


def test_default_plan_is_safe_and_round_trips() -> None:
    fractions = [s.fraction for s in DEFAULT_PLAN.steps]
    assert fractions == [0.0, 0.05, 0.25, 0.5, 1.0]
    assert all(s.min_items > 0 for s in DEFAULT_PLAN.steps[:-1])
    assert RampPlan.from_json(DEFAULT_PLAN.to_json()) == DEFAULT_PLAN
    import json

    assert RampPlan.from_json(json.dumps(DEFAULT_PLAN.to_json())) == DEFAULT_PLAN


@pytest.mark.parametrize(
    "data",
    [
        {"steps": [{"fraction": 0.5}]},
        {"steps": [{"fraction": 0.5}, {"fraction": 0.25}, {"fraction": 1.0}]},
        {"steps": [{"fraction": 0.0}, {"fraction": 0.5}]},
        {"steps": [{"fraction": 0.0}, {"fraction": 1.0, "max_escape_upper": 0.0}]},
        {"steps": [{"fraction": 0.0}, {"fraction": 1.0}], "audit_rate": 0.0},
        {"steps": [{"fraction": 0.0}, {"fraction": 1.0}], "bogus": 1},
        {"steps": [{"fraction": 0.0, "min_items": -1}, {"fraction": 1.0}]},
        {"steps": [{"fraction": 0.0, "nope": 1}, {"fraction": 1.0}]},
    ],
)
def test_invalid_plans_are_refused(data: dict) -> None:
    with pytest.raises(RampError):
        RampPlan.from_json(data)


def test_rate_bound_weights_and_empty() -> None:
    empty = rate_bound([], [], confidence=0.95)
    assert empty.rate is None and empty.upper == 1.0 and empty.lower == 0.0
    b = rate_bound([True] + [False] * 99, [1.0] * 100, confidence=0.95)
    assert b.rate == pytest.approx(0.01) and b.lower < 0.01 < b.upper
    # an audit weighing 4 counts four times in the rate
    w = rate_bound([True, False], [4.0, 1.0], confidence=0.95)
    assert w.rate == pytest.approx(0.8)


def _plan() -> RampPlan:
    return RampPlan(
        (RampStep(0.0, min_items=50, max_disagreement=0.2, max_escape_upper=0.05),
         RampStep(0.1, min_items=100, max_disagreement=0.2, max_escape_upper=0.05),
         RampStep(1.0, min_items=0)),
    ).validate()  # fmt: skip


def test_shadow_advances_on_good_evidence_and_holds_on_too_little() -> None:
    plan = _plan()
    good = evidence_from_items(60, _items(60, passed=False), confidence=0.95)
    assert isinstance(decide(plan, RampState(0), good), Advance)
    few = evidence_from_items(10, _items(10, passed=False), confidence=0.95)
    d = decide(plan, RampState(0), few)
    assert isinstance(d, Hold) and any("10 of 50 items" in r for r in d.reasons)


def test_canary_needs_proven_escape_bound() -> None:
    plan = _plan()
    # 30 clean audited passes: upper bound ~0.095 > 0.05, so it holds
    d = decide(plan, RampState(1), evidence_from_items(150, _items(30), confidence=0.95))
    assert isinstance(d, Hold) and any("escape upper bound" in r for r in d.reasons)
    d = decide(plan, RampState(1), evidence_from_items(150, _items(100), confidence=0.95))
    assert isinstance(d, Advance) and d.to_step == 2


def test_rolls_back_on_proven_escapes_and_on_alarm() -> None:
    plan = _plan()
    bad = evidence_from_items(150, _items(200, scratch_every=5), confidence=0.95)  # 20 % escapes
    d = decide(plan, RampState(1), bad)
    assert isinstance(d, Rollback) and "escape rate" in d.reasons[0]
    alarm = evidence_from_items(150, _items(100), confidence=0.95, open_alarms=("st1: drift",))
    d = decide(plan, RampState(1), alarm)
    assert isinstance(d, Rollback) and "open alarm" in d.reasons[0]


def test_never_advances_past_the_last_step_or_when_paused() -> None:
    plan = _plan()
    good = evidence_from_items(1000, _items(1000), confidence=0.95)
    assert isinstance(decide(plan, RampState(2), good), Hold)
    assert isinstance(decide(plan, RampState(1, "paused"), good), Hold)
    # advancing goes one step at a time: never from shadow straight to 100 %
    d = decide(plan, RampState(0), good)
    assert isinstance(d, Advance) and d.to_step == 1
