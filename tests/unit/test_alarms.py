"""inspection.core.alarms: rule validation and JSON, evaluation over streams, the demotion chain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inspection.core.alarms import (
    DEFAULT_RULES,
    AlarmRule,
    AlarmRuleSet,
    Severity,
    demote,
    evaluate,
    first_alarm,
    scan,
)
from inspection.core.concept import Concept, Estimate
from inspection.core.domain import AutomationLevel
from inspection.core.drift import Reference
from tests.unit.test_drift import stream

BRIGHTNESS = AlarmRule("brightness", "brightness", 200, 50, false_alarm_per_100k=0.05, demote=True)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_samples(stream(500, seed=1), source="test line")


# ---------------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "glare"}, "unknown metric 'glare'"),
        ({"window": 0}, "window must be a positive integer"),
        ({"step": -5}, "step must be a positive integer"),
        ({"threshold": 0.1}, "exactly one of"),
        ({"false_alarm_per_100k": None}, "exactly one of"),
        ({"false_alarm_per_100k": 0.0}, "positive false_alarm_per_100k"),
        ({"step": 300}, "step 300 > window 200"),
        ({"min_items": 201}, "min_items 201 > window 200"),
        ({"name": " "}, "non-empty name"),
        ({"metric": "ece"}, "needs a finite threshold"),
    ],
)
def test_a_bad_rule_is_refused_with_a_message(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "r", "metric": "brightness", "window": 200, "step": 50}
    fields["false_alarm_per_100k"] = 0.05
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        AlarmRule(**fields)


def test_a_statistical_rule_needs_a_full_window_and_a_concept_rule_one_label_by_default() -> None:
    assert BRIGHTNESS.needed == 200 and BRIGHTNESS.alpha == pytest.approx(2.5e-5)
    ece = AlarmRule("ece", "ece", 300, 50, threshold=0.1)
    assert ece.needed == 1 and ece.is_concept


def test_the_default_rules_demote_on_input_drift_and_the_escape_bound_only() -> None:
    demoting = {r.metric for r in DEFAULT_RULES.rules if r.demote}
    assert demoting == {"brightness", "sharpness", "features", "escape_upper"}
    concept = {r.metric for r in DEFAULT_RULES.rules if r.threshold is not None}
    assert concept == {"disagreement", "ece", "escape_upper", "escape_label_free_upper"}
    assert DEFAULT_RULES.false_alarm_per_100k == pytest.approx(0.55)


def test_a_rule_set_round_trips_through_json() -> None:
    text = json.dumps(DEFAULT_RULES.to_json())
    assert AlarmRuleSet.from_json(json.loads(text)) == DEFAULT_RULES
    custom = AlarmRuleSet((BRIGHTNESS,), interlock=False)
    assert AlarmRuleSet.from_json(json.loads(json.dumps(custom.to_json()))) == custom


def _rule(**changes: Any) -> dict[str, Any]:
    return {**BRIGHTNESS.to_json(), **changes}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("rules", "must be a JSON object"),
        ({"rules": {}}, "'rules' must be a list"),
        ({"rules": [], "colour": 1}, "unknown field.*colour"),
        ({"rules": [], "interlock": "yes"}, "interlock must be true, false or null"),
        ({"rules": [3]}, "a rule must be a JSON object"),
        ({"rules": [{"name": "x", "metric": "brightness"}]}, "missing field.*window, step"),
        ({"rules": [_rule(sensitivity=3)]}, "unknown field.*sensitivity"),
        ({"rules": [_rule(severity="loud")]}, "severity must be one of info, warning, critical"),
        ({"rules": [_rule(false_alarm_per_100k="low")]}, "false_alarm_per_100k must be a number"),
        ({"rules": [_rule(metric="glare")]}, "unknown metric 'glare'"),
        ({"rules": [_rule(window="200")]}, "window must be a positive integer"),
        ({"rules": [_rule(demote="yes")]}, "demote must be true or false"),
        ({"rules": [_rule(), _rule()]}, "repeated: brightness"),
    ],
)
def test_bad_rule_json_is_refused_with_a_message(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlarmRuleSet.from_json(data)


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def test_500_normal_then_300_darker_items_fire_the_brightness_rule(reference: Reference) -> None:
    items = stream(500, seed=2) + stream(300, seed=3, scale={"brightness": 0.75})
    outcomes = evaluate(DEFAULT_RULES, reference, items)
    firing = {o.rule.name for o in outcomes if o.firing}
    assert "brightness" in firing
    assert all(o.rule.demote for o in outcomes if o.rule.name == "brightness")


def test_a_step_change_is_caught_within_150_items(reference: Reference) -> None:
    items = stream(600, seed=2) + stream(400, seed=3, scale={"brightness": 0.75})
    at = first_alarm(BRIGHTNESS, reference, items)
    assert at is not None and 600 < at <= 750


def test_2000_unshifted_items_raise_nothing_over_all_looks(reference: Reference) -> None:
    items = stream(2000, seed=8)
    for rule in DEFAULT_RULES.rules:
        if rule.is_concept:
            continue
        looks = scan(rule, reference, items)
        assert looks, rule.name
        assert not [end for end, o in looks if o.firing], rule.name


def test_rules_are_evaluated_only_when_due_at_the_item_count(reference: Reference) -> None:
    items = stream(300, seed=2)
    assert evaluate(DEFAULT_RULES, reference, items, n_seen=301) == []
    assert len(evaluate(DEFAULT_RULES, reference, items, n_seen=300)) == len(DEFAULT_RULES.rules)


def test_without_a_reference_or_labels_nothing_fires() -> None:
    items = stream(300, seed=2, scale={"brightness": 0.5})
    assert not any(o.firing for o in evaluate(DEFAULT_RULES, None, items))


def test_concept_rules_fire_on_the_concept_given() -> None:
    concept = Concept(
        disagreement=Estimate(0.02, 0.01, 0.04, n=300),
        escape_audited=Estimate(0.02, 0.01, 0.05, n=400, upper=0.045),
    )
    outcomes = {o.rule.name: o for o in evaluate(DEFAULT_RULES, None, [], concept)}
    assert outcomes["escape upper bound"].firing and outcomes["escape upper bound"].rule.severity is Severity.CRITICAL
    assert not outcomes["disagreement"].firing
    with pytest.raises(ValueError, match="concept rule"):
        scan(DEFAULT_RULES.rules[-1], Reference({}, {}), [])


# ---------------------------------------------------------------------------------------------
# interlock
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "lower"),
    [
        (AutomationLevel.FULL, AutomationLevel.PARTIAL),
        (AutomationLevel.PARTIAL, AutomationLevel.AI_ASSIST),
        (AutomationLevel.AI_ASSIST, None),
        (AutomationLevel.SHADOW, None),
        (AutomationLevel.HUMAN_ONLY, None),
    ],
)
def test_demotion_drops_one_level_and_never_below_ai_assist(
    level: AutomationLevel, lower: AutomationLevel | None
) -> None:
    assert demote(level) is lower


@pytest.mark.parametrize(
    ("interlock", "level", "on"),
    [
        (None, AutomationLevel.FULL, True),
        (None, AutomationLevel.PARTIAL, False),
        (True, AutomationLevel.PARTIAL, True),
        (False, AutomationLevel.FULL, False),
    ],
)
def test_the_interlock_is_on_by_default_at_full_only(interlock: bool | None, level: AutomationLevel, on: bool) -> None:
    assert AlarmRuleSet((), interlock).interlock_on(level) is on


def test_a_time_based_window_looks_only_at_the_recent_minutes(reference: Reference) -> None:
    from dataclasses import replace
    from datetime import timedelta

    # 300 darker items in the morning, then 200 normal ones one per second from noon
    old = [replace(s, at=s.at + timedelta(seconds=i)) for i, s in enumerate(stream(300, 7, scale={"brightness": 0.75}))]
    noon = old[-1].at + timedelta(hours=4)
    new = [replace(s, at=noon + timedelta(seconds=i)) for i, s in enumerate(stream(200, seed=8))]
    by_count = AlarmRule("brightness", "brightness", 500, 50, false_alarm_per_100k=0.05)
    by_time = replace(by_count, minutes=10.0, min_items=100)

    (count_look,) = evaluate([by_count], reference, old + new)
    (time_look,) = evaluate([by_time], reference, old + new)
    assert count_look.firing and not time_look.firing
    assert time_look.result.n_window == 200  # only the last 10 minutes' items were tested
    assert AlarmRule.from_json(by_time.to_json()) == by_time
