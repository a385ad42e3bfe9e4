"""The retrain trigger's decisions (pure): when a run starts, and when its candidate is better."""

from __future__ import annotations

import pytest

from inspection.core.retrain_trigger import (
    HeldOutMetrics,
    TriggerError,
    TriggerInputs,
    TriggerSettings,
    auroc,
    heldout_metrics,
    judge,
    should_start,
)

ON = TriggerSettings(enabled=True, on_labels=50, every_hours=24.0, on_drift=True)

# (settings, inputs, start, kind, reason contains)
START_TABLE = [
    (TriggerSettings(enabled=False), TriggerInputs(500, 100.0, "brightness"), False, None, "disabled"),
    (ON, TriggerInputs(500, 100.0, "brightness", run_in_progress=True), False, None, "in progress"),
    (ON, TriggerInputs(500, 100.0, "x", busy="a ramp of c1 is running"), False, None, "a ramp of c1"),
    (ON, TriggerInputs(0, 0.1, "colour cast (colour_cast, warning)"), True, "drift", "drift alarm: colour cast"),
    (ON, TriggerInputs(49, 1.0), False, None, "49/50 new blind labels"),
    (ON, TriggerInputs(50, 1.0), True, "labels", "50 new blind labels"),
    (ON, TriggerInputs(3, 24.0), True, "schedule", "every 24 h"),
    (ON, TriggerInputs(3, None), False, None, "waiting"),  # never ran, no start time known: no schedule
    (
        TriggerSettings(enabled=True, on_labels=None, on_drift=False, every_hours=2.0),
        TriggerInputs(9999, 1.9),
        False,
        None,
        "1.9/2 h",
    ),  # fmt: skip
    (
        TriggerSettings(enabled=True, on_labels=10, on_drift=False),
        TriggerInputs(0, 1.0, "brightness"),
        False,
        None,
        "0/10",
    ),  # fmt: skip
    (ON, TriggerInputs(60, 30.0, "brightness"), True, "drift", "drift"),  # drift first: the most urgent
]


@pytest.mark.parametrize(("settings", "inputs", "start", "kind", "reason"), START_TABLE)
def test_should_start_table(
    settings: TriggerSettings, inputs: TriggerInputs, start: bool, kind: str | None, reason: str
) -> None:
    d = should_start(settings, inputs)
    assert (d.start, d.kind) == (start, kind)
    assert reason in d.reason


def _m(auc: float | None, escapes: int, *, n: int = 20, n_scratch: int = 10) -> HeldOutMetrics:
    return HeldOutMetrics(n, n_scratch, auc, escapes, 0, 0.05, 0.95)


# (candidate, production, min gain, better, reason contains)
JUDGE_TABLE = [
    (_m(0.95, 1), _m(0.80, 3), 0.0, True, "0.9500 > production 0.8000"),
    (_m(0.95, 3), _m(0.80, 3), 0.0, True, "3 vs 3"),  # escapes equal: not worse
    (_m(0.95, 4), _m(0.80, 3), 0.0, False, "more held-out escapes"),
    (_m(0.80, 0), _m(0.80, 3), 0.0, False, "not higher"),  # a tie is not better
    (_m(0.70, 0), _m(0.80, 3), 0.0, False, "not higher"),
    (_m(0.85, 0), _m(0.80, 3), 0.1, False, "by more than 0.1"),
    (_m(0.95, 0), None, 0.0, False, "production could not be scored"),
    (_m(None, 0), _m(0.8, 0), 0.0, False, "one class only"),
    (_m(0.95, 0, n=19), _m(0.8, 0), 0.0, False, "not the same held-out items"),
]


@pytest.mark.parametrize(("cand", "prod", "gain", "better", "reason"), JUDGE_TABLE)
def test_judge_table(cand: HeldOutMetrics, prod: HeldOutMetrics | None, gain: float, better: bool, reason: str) -> None:
    v = judge(cand, prod, min_auroc_gain=gain)
    assert v.better is better
    assert any(reason in r for r in v.reasons), v.reasons


def test_auroc_counts_ties_half_and_needs_both_classes() -> None:
    assert auroc([True, False], [0.9, 0.1]) == 1.0
    assert auroc([True, False], [0.1, 0.9]) == 0.0
    assert auroc([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert auroc([True, True], [0.1, 0.2]) is None
    assert auroc([True, False, False], [0.6, 0.6, 0.1]) == 0.75


def test_heldout_metrics_count_escapes_and_false_rejects_at_the_thresholds() -> None:
    m = heldout_metrics([True, True, False, False], [0.05, 0.5, 0.97, 0.2], pass_below=0.05, reject_above=0.95)
    assert (m.n, m.n_scratch, m.escapes, m.false_rejects, m.escape_rate) == (4, 2, 1, 1, 0.5)
    assert m.to_json()["escape_rate"] == 0.5


def test_settings_round_trip_and_refuse_nonsense() -> None:
    s = TriggerSettings(enabled=True, on_labels=30, every_hours=12.0, deploy_as="ramp", epochs=3, warm_start=False)
    assert TriggerSettings.from_json(s.to_json()) == s
    assert TriggerSettings().warm_start and s.params["warm_start"] is False
    assert TriggerSettings().epochs is None  # the training schedule chooses
    assert TriggerSettings.from_json({"epochs": None}).epochs is None
    for bad in ({"on_labels": 0}, {"every_hours": -1.0}, {"deploy_as": "promote"}, {"epochs": 0},
                {"min_auroc_gain": 1.5}, {"colour": "red"}, {"warm_start": "yes"},
                {"enabled": True, "on_labels": None, "every_hours": None, "on_drift": False}):  # fmt: skip
        with pytest.raises(TriggerError):
            TriggerSettings.from_json(bad)
