"""route(prediction, policy): every level, the thresholds at their boundaries, fail-safe, audit draw."""

from __future__ import annotations

import hashlib
import math

import pytest

from inspection.core.domain import AutomationLevel, Label, Policy, PolicyError, Prediction, RouteKind
from inspection.core.policy import audit_draw, route

L = AutomationLevel
PASS, REJECT, REVIEW = RouteKind.AUTO_PASS, RouteKind.AUTO_REJECT, RouteKind.REVIEW


def pol(level: AutomationLevel, *, audit_rate: float = 0.0) -> Policy:
    return Policy(station="s1", level=level, pass_below=0.05, reject_above=0.95, audit_rate=audit_rate)


def pred(score: float | None, error: str | None = None) -> Prediction:
    return Prediction(model_version="m1", score=score, error=error)


# (level, score, expected kind, expected label, show_model)
TABLE = [
    # human_only: a person decides everything and never sees the model
    (L.HUMAN_ONLY, 0.0, REVIEW, None, False),
    (L.HUMAN_ONLY, 0.5, REVIEW, None, False),
    (L.HUMAN_ONLY, 1.0, REVIEW, None, False),
    # shadow: model runs hidden
    (L.SHADOW, 0.0, REVIEW, None, False),
    (L.SHADOW, 1.0, REVIEW, None, False),
    # ai_assist: the person decides, seeing the model
    (L.AI_ASSIST, 0.0, REVIEW, None, True),
    (L.AI_ASSIST, 0.99, REVIEW, None, True),
    # partial: two thresholds, inclusive at both boundaries
    (L.PARTIAL, 0.0, PASS, Label.OK, False),
    (L.PARTIAL, 0.05, PASS, Label.OK, False),
    (L.PARTIAL, math.nextafter(0.05, 1.0), REVIEW, None, True),
    (L.PARTIAL, 0.5, REVIEW, None, True),
    (L.PARTIAL, math.nextafter(0.95, 0.0), REVIEW, None, True),
    (L.PARTIAL, 0.95, REJECT, Label.SCRATCH, False),
    (L.PARTIAL, 1.0, REJECT, Label.SCRATCH, False),
    # full: everything not confidently ok is rejected
    (L.FULL, 0.05, PASS, Label.OK, False),
    (L.FULL, math.nextafter(0.05, 1.0), REJECT, Label.SCRATCH, False),
    (L.FULL, 0.5, REJECT, Label.SCRATCH, False),
    (L.FULL, 1.0, REJECT, Label.SCRATCH, False),
]


@pytest.mark.parametrize(("level", "score", "kind", "label", "show"), TABLE)
def test_route_table(
    level: AutomationLevel, score: float, kind: RouteKind, label: Label | None, show: bool
) -> None:
    r = route(pred(score), pol(level), image_hash="abc")
    assert (r.kind, r.label, r.show_model) == (kind, label, show)
    assert r.reason
    assert r.needs_person == (kind is REVIEW)


def test_every_level_is_covered_by_the_table() -> None:
    assert {row[0] for row in TABLE} == set(AutomationLevel)


FAILSAFE = [
    (None, "no model output"),
    (pred(None, error="model time-out after 30 s"), "time-out"),
    (pred(0.01, error="decoder failed"), "decoder failed"),
    (pred(float("nan")), "invalid score"),
    (pred(-0.1), "invalid score"),
    (pred(1.5), "invalid score"),
    (pred(None), "invalid score"),
]


@pytest.mark.parametrize("level", [L.SHADOW, L.AI_ASSIST, L.PARTIAL, L.FULL])
@pytest.mark.parametrize(("prediction", "why"), FAILSAFE)
def test_no_valid_model_output_goes_to_a_person(
    level: AutomationLevel, prediction: Prediction | None, why: str
) -> None:
    r = route(prediction, pol(level, audit_rate=1.0), image_hash="abc")
    assert r.kind is REVIEW and r.label is None and not r.audit
    assert r.reason.startswith("fail-safe") and why in r.reason
    assert not r.show_model  # there is nothing valid to show


def test_human_only_without_prediction_is_a_plain_review() -> None:
    r = route(None, pol(L.HUMAN_ONLY), image_hash="abc")
    assert r.kind is REVIEW and r.label is None


@pytest.mark.parametrize("level", [L.PARTIAL, L.FULL])
def test_audit_flags_only_automatic_decisions(level: AutomationLevel) -> None:
    always = pol(level, audit_rate=1.0)
    auto = route(pred(0.01), always, image_hash="h")
    assert auto.audit and auto.needs_person and not auto.show_model  # blind
    assert auto.label is Label.OK  # the decision stays the model's
    never = pol(level, audit_rate=0.0)
    assert not route(pred(0.01), never, image_hash="h").audit


def test_uncertain_items_are_never_flagged_as_audit() -> None:
    assert not route(pred(0.5), pol(L.PARTIAL, audit_rate=1.0), image_hash="h").audit


def _hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def test_audit_draw_is_reproducible_and_seeded() -> None:
    hashes = _hashes(200)
    first = [audit_draw(h, seed=7) for h in hashes]
    assert first == [audit_draw(h, seed=7) for h in hashes]
    assert first != [audit_draw(h, seed=8) for h in hashes]
    assert all(0.0 <= x < 1.0 for x in first)


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.5])
def test_audit_share_matches_audit_rate(rate: float) -> None:
    policy = pol(L.FULL, audit_rate=rate)
    n = 10_000
    audited = sum(route(pred(0.01), policy, image_hash=h).audit for h in _hashes(n))
    # Binomial standard deviation; 4 sigma keeps the test deterministic-in-practice and still sharp.
    sd = math.sqrt(n * rate * (1 - rate))
    assert abs(audited - n * rate) < 4 * sd


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pass_below": 0.5, "reject_above": 0.5}, "must be below"),
        ({"pass_below": 0.9, "reject_above": 0.2}, "must be below"),
        ({"audit_rate": 1.5}, "audit_rate"),
        ({"audit_rate": -0.1}, "audit_rate"),
        ({"pass_below": -0.01}, "pass_below"),
        ({"reject_above": 1.01}, "reject_above"),
        ({"level": "mostly"}, "unknown automation level"),
    ],
)
def test_invalid_policies_are_refused(changes: dict[str, object], message: str) -> None:
    fields = {
        "station": "s1",
        "level": L.PARTIAL,
        "pass_below": 0.05,
        "reject_above": 0.95,
        "audit_rate": 0.02,
    }
    with pytest.raises(PolicyError, match=message):
        Policy(**(fields | changes)).validate()  # type: ignore[arg-type]
