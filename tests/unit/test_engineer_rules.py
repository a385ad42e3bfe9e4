"""Pure decision rules of the engineers' loop: weights, previous production, promotion verdicts,
label sufficiency, export options."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from inspection.services.deploy import DeployError, previous_production, validate_version, worse_than_production
from inspection.services.export import ExportError, ExportFilter
from inspection.services.registry import ProductionStep, rollback_target
from inspection.services.retrain import LabelledItem, NotEnoughLabels, check_enough, snapshot_hash
from inspection.services.tuning import audit_weight


@pytest.mark.parametrize(
    ("audit", "rate", "weight"),
    [(False, 0.02, 1.0), (True, 0.02, 50.0), (True, 0.5, 2.0), (True, 0.0, 1.0), (True, None, 1.0)],
)
def test_audit_labels_stand_for_one_over_the_audit_rate_phones(audit: bool, rate: float | None, weight: float) -> None:
    assert audit_weight(audit, rate) == pytest.approx(weight)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([], None),  # only the default model ever served
        (["base"], None),  # a row that keeps the default
        (["v2"], "base"),  # promoted once
        (["v2", "v2", "v2"], "base"),  # shadow / canary rows keep production
        (["v2", "v3"], "v2"),
        (["v2", "base"], "v2"),  # after a rollback, the previous one is the rolled-back version
    ],
)
def test_previous_production_is_the_last_different_production(history: list[str], expected: str | None) -> None:
    assert previous_production(history, default_model="base") == expected


@pytest.mark.parametrize(
    ("cand", "prod", "worse"),
    [
        ({"auroc": 0.90}, {"auroc": 0.91}, True),
        ({"auroc": 0.91}, {"auroc": 0.91}, False),  # a tie is not worse
        ({"auroc": 0.95, "accuracy": 0.5}, {"auroc": 0.9, "accuracy": 0.9}, False),  # ranking decides
        ({"accuracy": 0.8}, {"accuracy": 0.9}, True),  # AUROC undefined (one class held out)
        ({"auroc": None, "accuracy": 0.9}, {"auroc": 0.9, "accuracy": 0.9}, False),
        ({}, {}, False),
    ],
)
def test_a_candidate_is_worse_only_when_it_ranks_or_classifies_worse(
    cand: dict[str, float], prod: dict[str, float], worse: bool
) -> None:
    assert (worse_than_production(cand, prod) is not None) == worse


def _items(scratch: int, ok: int) -> list[LabelledItem]:
    return [
        LabelledItem(i, f"{i:064x}", "p", "scratch" if i < scratch else "ok", False, "s") for i in range(scratch + ok)
    ]


@pytest.mark.parametrize(
    ("scratch", "ok", "needed"),
    [
        (20, 20, None),
        (0, 0, {"scratch": 20, "ok": 20}),
        (19, 40, {"scratch": 1, "ok": 0}),
        (25, 3, {"scratch": 0, "ok": 17}),
    ],
)
def test_retraining_needs_twenty_labels_of_each_class(scratch: int, ok: int, needed: dict[str, int] | None) -> None:
    if needed is None:
        check_enough(_items(scratch, ok))
        return
    with pytest.raises(NotEnoughLabels) as err:
        check_enough(_items(scratch, ok))
    assert err.value.needed == needed


def test_the_data_snapshot_hash_changes_with_any_item_or_label() -> None:
    a = _items(3, 3)
    base = snapshot_hash(a[:4], a[4:])
    assert snapshot_hash(a[:4], a[4:]) == base
    assert snapshot_hash(a[:3], a[3:]) != base
    flipped = [LabelledItem(a[0].inspection_id, a[0].sha256, "p", "ok", False, "s"), *a[1:4]]
    assert snapshot_hash(flipped, a[4:]) != base


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".", "..", " ", "x" * 200, "a\nb"])
def test_model_versions_are_plain_directory_names(bad: str) -> None:
    with pytest.raises(DeployError):
        validate_version(bad)


def test_export_filter_rejects_unknown_sources_and_empty_windows() -> None:
    with pytest.raises(ExportError, match="--source"):
        ExportFilter(source="robots")
    t = datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(ExportError, match="--since must be before --until"):
        ExportFilter(since=t, until=t)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([], None),
        ([("v2", True)], "base"),
        ([("v2", False)], "base"),  # forced in: back to the default
        ([("v2", False), ("base", False)], None),  # the forced one is never a target
        ([("v2", True), ("base", False)], "v2"),  # vouched for once: a target
        ([("v3", True), ("v2", False)], "v3"),
        ([("v3", True), ("v2", False), ("v3", False)], "base"),  # after rollback to v3: skip v2
        ([("v3", True), ("v3", True), ("v3", True)], "base"),  # shadow / canary rows keep production
    ],
)
def test_rollback_target_is_the_last_earlier_production_promoted_without_force(
    steps: list[tuple[str, bool]], expected: str | None
) -> None:
    history = [ProductionStep(v, vouched=ok) for v, ok in steps]
    assert rollback_target(history, default_model="base") == expected
