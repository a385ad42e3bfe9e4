"""Threshold tuning on stored history: audit weighting, what-if with known answers, suggestion and
refusal, calibration per model version — on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from inspection import store
from inspection.config import Settings
from inspection.core import thresholds
from inspection.services import tuning
from inspection.services.context import Pipeline
from tests.engineer_fixtures import fake_pipeline
from ui import engineer_policy

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
_seq = itertools.count(1)


@pytest.fixture
def app(db_settings: Settings) -> Iterator[Pipeline]:
    with fake_pipeline(db_settings, ["v1", "v2"]) as p:
        yield p


def add_policy(app: Pipeline, *, station: str, version: int, audit_rate: float) -> None:
    with app.write() as s:
        store.add_policy_version(
            s,
            row=store.PolicyVersionRow(
                station=station,
                version=version,
                level="partial",
                pass_below=0.2,
                reject_above=0.8,
                audit_rate=audit_rate,
                created_by="t",
                created_at=NOW,
                reason="t",
            ),
        )


def add_items(
    app: Pipeline,
    items: list[tuple[str, bool, float, str | None]],
    *,
    station: str = "s1",
    policy_version: int = 1,
    version: str = "v1",
    role: str = "production",
) -> None:
    """(route, audit, score, human label or None) per item, stored as the pipeline would."""
    with app.write() as s:
        for route, audit, score, label in items:
            n = next(_seq)
            img = store.get_or_add_image(
                s,
                image=store.ImageRow(
                    sha256=f"{n:064x}",
                    path=f"images/{n}.png",
                    size_bytes=1,
                    width=64,
                    height=64,
                    first_station=station,
                    received_at=NOW,
                ),
            )
            auto = route != "review"
            row = store.add_inspection(
                s,
                row=store.InspectionRow(
                    image_id=img.id or 0,
                    station=station,
                    received_at=NOW + timedelta(seconds=n),
                    policy_version=policy_version,
                    level="partial",
                    route=route,
                    audit=audit,
                    final_label=("ok" if route == "auto_pass" else "scratch") if auto else label,
                    decided_by="model" if auto else "inspector",
                    model_version=version,
                    score=score,
                    reason="t",
                    status="done",
                ),
            )
            assert row.id is not None
            store.add_prediction(
                s,
                row=store.PredictionRow(
                    inspection_id=row.id, model_version=version, role=role, score=score, created_at=NOW
                ),
            )
            if label is not None:
                s.add(
                    store.ReviewRow(
                        inspection_id=row.id, inspector="ines", label=label, blind=audit, audit=audit, created_at=NOW
                    )
                )


# 10 reviewed uncertain items (weight 1) + 4 blind audits of automatic decisions at audit_rate 0.1
# (weight 10 each): one audited auto-pass was in fact scratched, an escape.
HISTORY = (
    [("review", False, 0.5, "scratch")] * 5
    + [("review", False, 0.5, "ok")] * 5
    + [("auto_pass", True, 0.05, "ok")] * 2
    + [("auto_reject", True, 0.95, "scratch"), ("auto_pass", True, 0.1, "scratch")]
)


def test_audit_labels_are_weighted_by_the_inverse_audit_rate_of_their_policy(app: Pipeline) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, HISTORY)
    history, stats = tuning.labelled_history(app, station="s1")
    assert (stats.n, stats.n_audit, stats.n_scratch) == (14, 4, 7)
    assert sorted(h.weight for h in history) == [1.0] * 10 + [10.0] * 4
    assert all(h.audit == (h.weight == 10.0) for h in history)
    assert stats.warnings == ()


@pytest.mark.parametrize(
    ("pass_below", "reject_above", "automation", "escape", "false_reject", "review"),
    [
        (0.2, 0.8, 0.8, 0.2, 0.0, 0.2),  # W = 10 + 4*10 = 50: pass 30, reject 10, escape 10
        (0.07, 0.97, 0.4, 0.0, 0.0, 0.6),  # only the two ok audits pass; nothing is rejected
        (0.5, 0.6, 1.0, 0.3, 0.0, 0.0),  # the uncertain items pass too: 5 more scratched escape
        (0.0, 0.5, 0.4, 0.0, 0.1, 0.6),  # score >= 0.5 rejected: 5 ok uncertain items falsely
    ],
)
def test_what_if_on_stored_history_gives_the_hand_computed_rates(
    app: Pipeline,
    pass_below: float,
    reject_above: float,
    automation: float,
    escape: float,
    false_reject: float,
    review: float,
) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, HISTORY)
    history, _ = tuning.labelled_history(app, station="s1")
    wi = thresholds.what_if(history, pass_below=pass_below, reject_above=reject_above)
    assert wi.automation_rate == pytest.approx(automation)
    assert wi.escape_rate == pytest.approx(escape)
    assert wi.false_reject_rate == pytest.approx(false_reject)
    assert wi.review_rate == pytest.approx(review)


def test_too_few_labels_gives_no_recommendation_but_the_number_needed(app: Pipeline, tmp_path: Path) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, HISTORY)
    res = tuning.suggest_thresholds(app, station="s1", max_escape=0.001, curve=True)
    assert not res.suggestion.ok and res.suggestion.pass_below is None
    assert res.suggestion.labels_needed > 1000 and "too few labels" in res.suggestion.reason
    png = tuning.plot_suggestion(res, tmp_path / "plot.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_enough_clean_labels_give_the_known_threshold_pair(app: Pipeline) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, [("review", False, 0.02, "ok")] * 200 + [("review", False, 0.98, "scratch")] * 200)
    res = tuning.suggest_thresholds(app, station="s1", max_escape=0.01)
    s = res.suggestion
    assert s.ok and (s.pass_below, s.reject_above) == (0.02, 0.98)
    assert s.what_if is not None and s.what_if.automation_rate == pytest.approx(1.0)
    assert res.to_dict()["what_if"]["escape_rate"] == 0.0


def test_unaudited_automatic_decisions_are_flagged(app: Pipeline) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.0)
    add_items(app, [("review", False, 0.5, "ok"), ("auto_pass", False, 0.01, None)])
    _, stats = tuning.labelled_history(app, station="s1")
    assert stats.unaudited_auto == 1 and "audit_rate 0" in stats.warnings[0]


def test_history_of_another_model_version_uses_that_models_scores_in_any_role(app: Pipeline) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, [("review", False, 0.3, "ok")] * 3)
    add_items(app, [("review", False, 0.7, "scratch")] * 2, version="v2", role="shadow")
    assert len(tuning.labelled_history(app, station="s1")[0]) == 3
    assert [h.score for h in tuning.labelled_history(app, station="s1", model_version="v2")[0]] == [0.7, 0.7]


def test_calibration_per_version_reports_ece_and_draws_a_reliability_diagram(app: Pipeline, tmp_path: Path) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, HISTORY)
    add_items(app, [("review", False, 0.9, "ok")] * 4, version="v2", role="shadow")
    res = {c.model_version: c for c in tuning.calibration(app, bins=10)}
    # v1: bins [0, .1) mean .05 obs 0 (2 items), [.1, .2) .1 vs 1, [.5, .6) .5 vs .5, [.9, 1] .95 vs 1
    assert res["v1"].n == 14 and res["v1"].ece == pytest.approx((2 * 0.05 + 0.9 + 0.05) / 14)
    assert res["v2"].ece == pytest.approx(0.9)
    png = tuning.plot_calibration(list(res.values()), tmp_path / "rel.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert tuning.calibration(app, model_version="nope")[0].n == 0


def test_the_engineer_screens_what_if_and_thresholds_suggest_give_the_same_numbers(app: Pipeline) -> None:
    add_policy(app, station="s1", version=1, audit_rate=0.1)
    add_items(app, HISTORY + [("review", False, 0.02, "ok")] * 300 + [("review", False, 0.98, "scratch")] * 300)
    add_items(app, [("review", False, 0.5, "ok")] * 3, station="s2")  # another station: not in either
    res = tuning.suggest_thresholds(app, station="s1", max_escape=0.05, max_false_reject=0.05)
    s = res.suggestion
    assert s.ok and s.pass_below is not None and s.reject_above is not None and s.what_if is not None
    # What the screen replays once a station is picked, and what it shows for these thresholds.
    history = engineer_policy.labelled_history(app, station="s1")
    assert len(history) == res.stats.n == 614 and sum(h.audit for h in history) == res.stats.n_audit == 4
    shown, _note = engineer_policy.what_if(
        history, level="partial", pass_below=s.pass_below, reject_above=s.reject_above
    )
    assert shown == s.what_if
    html = engineer_policy.what_if_html(
        history,
        level="partial",
        pass_below=s.pass_below,
        reject_above=s.reject_above,
        items_per_hour=600,
        seconds_per_review=4,
    )
    assert f"{s.what_if.automation_rate * 100:.1f} %" in html and f"{s.what_if.n} labels" in html
