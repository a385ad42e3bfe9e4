"""The pipeline use cases end to end on a real database (SQLite and PostgreSQL) with fake models."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from inspection import store
from inspection.config import Settings
from inspection.core.domain import DecidedBy, Label, PolicyError, RouteKind
from inspection.core.stats import wilson_interval
from inspection.services import accounts, context, errors, events, ingest, policies, reports, review, tokens
from tests.fakes import (
    BrightnessScorer,
    FakeClock,
    Models,
    NaNScorer,
    RaisingScorer,
    SlowScorer,
    jpeg,
    level_for,
    png,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(settings: Settings, clock: FakeClock, **scorers: object) -> context.Pipeline:
    models = Models(scorers or {"baseline": BrightnessScorer()})
    return context.Pipeline.create(settings, scorer_factory=models, clock=clock)


@pytest.fixture
def app(db_settings: Settings, clock: FakeClock):
    ctx = make(db_settings, clock)
    yield ctx
    ctx.close()


def partial(app: context.Pipeline, station: str = "s1", **kw: object) -> None:
    values: dict[str, object] = {
        "level": "partial",
        "pass_below": 0.1,
        "reject_above": 0.9,
        "audit_rate": 0.0,
    }
    policies.set_policy(app, station=station, by="eve", reason="test", **(values | kw))  # type: ignore[arg-type]


def count(app: context.Pipeline, table: type) -> int:
    with app.read() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_unconfigured_station_is_human_only_and_stores_the_image_content_addressed(
    app: context.Pipeline,
) -> None:
    data = png(120)
    out = ingest.inspect(app, data=data, station="s1", source_name="../../etc/passwd")
    i = out.inspection
    assert out.created and out.problem is None
    assert (i.route, i.label, i.decided_by, i.score) == (RouteKind.REVIEW, None, None, None)
    assert i.reason.startswith("human_only")
    sha = hashlib.sha256(data).hexdigest()
    assert i.image_hash == sha
    stored = app.settings.data_dir / "images" / sha[:2] / f"{sha}.png"
    assert stored.read_bytes() == data
    with app.read() as s:
        img = s.execute(sa.select(store.ImageRow)).scalar_one()
        assert img.path == f"images/{sha[:2]}/{sha}.png" and img.source_name == "passwd"
        assert (img.width, img.height) == (64, 64) and img.brightness is not None
    assert count(app, store.PredictionRow) == 0  # human_only: the model does not run
    assert not (app.settings.data_dir.parent / "etc").exists()


def test_same_image_twice_is_stored_once_but_inspected_twice(app: context.Pipeline) -> None:
    a = ingest.inspect(app, data=png(50), station="s1")
    b = ingest.inspect(app, data=png(50), station="s1")
    assert a.inspection.id != b.inspection.id
    assert count(app, store.ImageRow) == 1 and count(app, store.InspectionRow) == 2


@pytest.mark.parametrize(
    ("score", "route", "label"),
    [
        (0.02, RouteKind.AUTO_PASS, Label.OK),
        (0.5, RouteKind.REVIEW, None),
        (0.98, RouteKind.AUTO_REJECT, Label.SCRATCH),
    ],
)
def test_partial_routes_by_thresholds_and_stores_what_decided(
    app: context.Pipeline, score: float, route: RouteKind, label: Label | None
) -> None:
    partial(app)
    out = ingest.inspect(app, data=png(level_for(score)), station="s1").inspection
    assert out.route is route and out.label is label
    assert out.decided_by == (DecidedBy.MODEL if label else None)
    assert out.model_version == "fake-1" and out.policy_version == 1
    assert out.score == pytest.approx(score, abs=0.003)
    assert out.regions and out.regions[0].w == 3
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=out.id)
        (pred,) = store.predictions_for(s, inspection_id=out.id)
    assert row is not None and row.status == ("queued" if label is None else "done")
    assert pred.role == "production" and pred.latency_ms == 1.5 and pred.regions[0]["h"] == 4
    assert pred.heatmap_path is not None and app.resolve(pred.heatmap_path).stat().st_size > 0


def test_uncertain_item_shows_the_model_to_the_inspector(app: context.Pipeline) -> None:
    partial(app)
    ingest.inspect(app, data=png(level_for(0.5)), station="s1")
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.show_model and task.score == pytest.approx(0.5, abs=0.003)
    assert task.heatmap_path is not None and task.heatmap_path.exists() and task.regions


@pytest.mark.parametrize("level", ["human_only", "shadow", "ai_assist", "partial", "full"])
def test_undecodable_image_goes_to_a_person_with_the_reason(app: context.Pipeline, level: str) -> None:
    partial(app, level=level)
    out = ingest.inspect(app, data=b"%PDF-1.4 definitely not an image", station="s1")
    assert out.problem is not None and out.problem.kind == "unsupported"
    i = out.inspection
    assert i.route is RouteKind.REVIEW and i.label is None and i.decided_by is None
    assert "not a supported image type" in i.reason
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.inspection_id == i.id and task.error and "not a supported" in task.error
    # The bytes are kept (a person may want to see what arrived), under their hash, never as .pdf.
    assert task.image_path.suffix == ".bin" and task.image_path.exists()


def test_truncated_image_is_recognised_but_unusable(app: context.Pipeline) -> None:
    partial(app, level="full")
    out = ingest.inspect(app, data=jpeg(200, 100)[:300], station="s1")
    assert out.problem is not None and out.problem.kind == "unusable"
    assert out.inspection.route is RouteKind.REVIEW and out.inspection.reason.startswith("fail-safe")


@pytest.mark.parametrize(
    ("scorer", "why"),
    [(RaisingScorer(), "model error: RuntimeError: CUDA out of memory"), (NaNScorer(), "invalid score nan")],
)
def test_model_failure_is_fail_safe(
    db_settings: Settings, clock: FakeClock, scorer: object, why: str
) -> None:
    with make(db_settings, clock, baseline=scorer) as app:
        partial(app, level="full", audit_rate=1.0)
        out = ingest.inspect(app, data=png(1), station="s1")
        i = out.inspection
        assert i.route is RouteKind.REVIEW and i.label is None and i.score is None
        assert why in i.reason
        with app.read() as s:
            (pred,) = store.predictions_for(s, inspection_id=i.id)
        assert pred.score is None and why in (pred.error or "")


def test_missing_model_is_fail_safe(db_settings: Settings, clock: FakeClock) -> None:
    with context.Pipeline.create(db_settings, scorer_factory=Models(), clock=clock) as app:
        partial(app, level="full")
        out = ingest.inspect(app, data=png(1), station="s1").inspection
        assert out.route is RouteKind.REVIEW and "no model 'baseline'" in out.reason


def test_model_time_out_is_fail_safe(db_settings: Settings, clock: FakeClock) -> None:
    settings = db_settings.model_copy(update={"score_timeout_seconds": 0.2})
    with make(settings, clock, baseline=SlowScorer(2.0)) as app:
        partial(app, level="full")
        out = ingest.inspect(app, data=png(1), station="s1").inspection
        assert out.route is RouteKind.REVIEW and "time-out after 0.2 s" in out.reason


def test_idempotent_retry_creates_nothing(app: context.Pipeline) -> None:
    partial(app)
    first = ingest.inspect(app, data=png(3), station="s1", idempotency_key="cam1-0001")
    before = [
        count(app, t) for t in (store.InspectionRow, store.PredictionRow, store.EventRow, store.ImageRow)
    ]
    again = ingest.inspect(app, data=png(3), station="s1", idempotency_key="cam1-0001")
    after = [
        count(app, t) for t in (store.InspectionRow, store.PredictionRow, store.EventRow, store.ImageRow)
    ]
    assert not again.created and again.inspection == first.inspection and before == after
    with pytest.raises(errors.IdempotencyConflict):
        ingest.inspect(app, data=png(4), station="s1", idempotency_key="cam1-0001")
    other = ingest.inspect(app, data=png(3), station="s2", idempotency_key="cam1-0001")
    assert other.created  # keys are per station


def test_upload_over_the_limit_stores_nothing(db_settings: Settings, clock: FakeClock) -> None:
    with make(db_settings.model_copy(update={"max_upload_bytes": 100}), clock) as app:
        with pytest.raises(errors.UploadTooLarge, match="limit is 100 bytes"):
            ingest.inspect(app, data=png(3, size=256), station="s1")
        assert count(app, store.InspectionRow) == 0
        assert not (app.settings.data_dir / "images").exists()


@pytest.mark.parametrize("station", ["", "  ", "a b", "../x", "x" * 65])
def test_bad_station_is_refused(app: context.Pipeline, station: str) -> None:
    with pytest.raises(errors.InputError, match="station"):
        ingest.inspect(app, data=png(3), station=station)


def test_policy_is_versioned_with_who_why_and_old_values(app: context.Pipeline, clock: FakeClock) -> None:
    assert policies.get_policy(app, station="s1").level.value == "human_only"
    policies.set_policy(app, station="s1", by="eve", reason="pilot", level="shadow")
    clock.advance(60)
    p = policies.set_policy(
        app, station="s1", by="max", reason="evidence", level="partial", pass_below=0.03, reject_above=0.97
    )
    assert (p.version, p.level.value, p.pass_below, p.audit_rate) == (2, "partial", 0.03, 0.02)
    history = policies.list_policies(app, station="s1")
    assert [h.policy.version for h in history] == [1, 2]
    assert history[1].created_by == "max" and history[1].reason == "evidence"
    assert history[1].old is not None and history[1].old["level"] == "shadow"
    with app.read() as s:
        (event,) = store.list_events(s, kind="policy.changed", limit=1)
    assert event.detail["old"]["level"] == "shadow" and event.detail["new"]["pass_below"] == 0.03
    # The decision records the policy version it was made under.
    assert ingest.inspect(app, data=png(1), station="s1").inspection.policy_version == 2


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"level": "partial", "pass_below": 0.9, "reject_above": 0.1}, "must be below reject_above"),
        ({"level": "partial", "pass_below": 0.5, "reject_above": 0.5}, "must be below reject_above"),
        ({"audit_rate": 1.2}, r"audit_rate must be within \[0, 1\]"),
        ({"pass_below": -0.1}, r"pass_below must be within \[0, 1\]"),
        ({"pass_below": float("nan")}, "pass_below must be a number"),
        ({"level": "automatic"}, "unknown automation level 'automatic'; choose one of human_only"),
        ({"level": "partial", "reason": " "}, "a reason is required"),
        ({"level": "partial", "by": ""}, "--by"),
    ],
)
def test_invalid_policy_is_refused_and_nothing_is_stored(
    app: context.Pipeline, kw: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"station": "s1", "by": "eve", "reason": "r"} | kw
    with pytest.raises(PolicyError, match=message):
        policies.set_policy(app, **args)  # type: ignore[arg-type]
    assert count(app, store.PolicyVersionRow) == 0


def test_audit_samples_are_blind_and_feed_the_audit_report(app: context.Pipeline) -> None:
    partial(app, level="full", pass_below=0.1, audit_rate=1.0)  # every automatic decision audited
    passed = [ingest.inspect(app, data=png(5, seed=i), station="s1").inspection for i in range(6)]
    rejected = [ingest.inspect(app, data=png(200, seed=i), station="s1").inspection for i in range(4)]
    assert all(i.route is RouteKind.AUTO_PASS and i.label is Label.OK for i in passed)
    assert all(i.route is RouteKind.AUTO_REJECT for i in rejected)
    report = reports.audit_report(app, station="s1")
    assert (report.audits, report.pending) == (0, 10)
    truth = {i.id: Label.OK for i in passed} | {i.id: Label.SCRATCH for i in rejected}
    truth[passed[0].id] = Label.SCRATCH  # one escape
    truth[rejected[0].id] = Label.OK  # one false reject
    while (task := review.claim_next(app, inspector="auditor")) is not None:
        assert task.audit and not task.show_model
        assert task.score is None and task.regions == () and task.reason == ""  # blind
        review.submit_label(
            app, inspection_id=task.inspection_id, inspector="auditor", label=truth[task.inspection_id]
        )
    report = reports.audit_report(app, station="s1")
    assert (report.audits, report.pending) == (10, 0)
    assert (report.escape.events, report.escape.trials) == (1, 6)
    assert (report.false_reject.events, report.false_reject.trials) == (1, 4)
    assert (report.escape.low, report.escape.high) == pytest.approx(wilson_interval(1, 6))
    assert report.to_dict()["escape_rate"]["n"] == 6
    # The automatic decisions stay the model's.
    assert ingest.get_inspection(app, inspection_id=passed[0].id).inspection.label is Label.OK
    assert reports.audit_report(app, station="other").audits == 0


def test_shadow_report_compares_hidden_model_with_inspectors(app: context.Pipeline) -> None:
    partial(app, level="shadow")
    items = []
    for i in range(30):
        score = 0.02 if i < 20 else 0.97
        items.append(
            (ingest.inspect(app, data=png(level_for(score), seed=i), station="s1").inspection, score)
        )
    for inspection, score in items:
        task = review.claim_next(app, inspector="ann")
        assert task is not None and not task.show_model and task.score is None  # shadow is hidden
        truth = "scratch" if score > 0.5 else "ok"
        if inspection.id == items[0][0].id:
            truth = "scratch"  # the model missed one
        review.submit_label(app, inspection_id=task.inspection_id, inspector="ann", label=truth)
    r = reports.shadow_report(app, station="s1")
    assert (r.n, r.tp, r.fp, r.tn, r.fn) == (30, 10, 0, 19, 1)
    assert r.agreement == pytest.approx(29 / 30) and r.agreement_low < r.agreement < r.agreement_high
    assert r.suggestion is not None and not r.suggestion.ok
    assert r.summary.startswith("not enough labels") or "no threshold pair" in r.summary
    d = r.to_dict()
    assert d["confusion"] == {"tp": 10, "fp": 0, "tn": 19, "fn": 1} and d["summary"] == r.summary


def test_shadow_report_suggests_thresholds_when_evidence_suffices(app: context.Pipeline) -> None:
    partial(app, level="ai_assist")
    with app.write() as s:  # labelled history straight into the store, one transaction: fast
        for i in range(1600):
            score = 0.01 if i % 4 else 0.99
            img = store.get_or_add_image(
                s,
                image=store.ImageRow(
                    sha256=f"{i:064x}", path="x", size_bytes=1, first_station="s1", received_at=app.clock()
                ),
            )
            row = store.add_inspection(
                s,
                row=store.InspectionRow(
                    image_id=img.id or 0, station="s1", received_at=app.clock(), policy_version=1,
                    level="ai_assist", route="review", reason="", status="done", score=score,
                ),
            )  # fmt: skip
            store.add_prediction(
                s,
                row=store.PredictionRow(
                    inspection_id=row.id or 0, model_version="fake-1", role="production", score=score,
                    created_at=app.clock(),
                ),
            )  # fmt: skip
            s.add(store.ReviewRow(
                inspection_id=row.id or 0, inspector="ann", label="ok" if score < 0.5 else "scratch",
                created_at=app.clock(),
            ))  # fmt: skip
    r = reports.shadow_report(app, station="s1", max_escape=0.005)
    assert r.n == 1600 and r.agreement == 1.0
    assert r.suggestion is not None and r.suggestion.ok
    assert r.summary.startswith("partial with pass_below") and "would have automated 100 %" in r.summary


def test_shadow_candidate_is_scored_but_never_decides(db_settings: Settings, clock: FakeClock) -> None:
    with make(db_settings, clock, baseline=BrightnessScorer("prod-1"), cand=RaisingScorer()) as app:
        partial(app, level="partial")
        with app.write() as s:
            store.add_deployment(
                s,
                row=store.DeploymentRow(
                    at=clock(),
                    production_version="baseline",
                    candidate_version="cand",
                    mode="shadow",
                    actor="eve",
                ),
            )
        out = ingest.inspect(app, data=png(1), station="s1").inspection
        assert (
            out.route is RouteKind.AUTO_PASS and out.model_version == "prod-1"
        )  # broken candidate: no effect
        with app.read() as s:
            roles = {p.role: p for p in store.predictions_for(s, inspection_id=out.id)}
        assert set(roles) == {"production", "shadow"} and roles["shadow"].error


def test_canary_decides_a_deterministic_share(db_settings: Settings, clock: FakeClock) -> None:
    with make(
        db_settings, clock, baseline=BrightnessScorer("prod-1"), cand=BrightnessScorer("cand-2")
    ) as app:
        partial(app, level="partial")
        with app.write() as s:
            store.add_deployment(
                s,
                row=store.DeploymentRow(
                    at=clock(), production_version="baseline", candidate_version="cand", mode="canary",
                    canary_fraction=0.5, actor="eve",
                ),
            )  # fmt: skip
        versions = [
            ingest.inspect(app, data=png(1, seed=i), station="s1").inspection.model_version
            for i in range(40)
        ]
        assert set(versions) == {"prod-1", "cand-2"}
        again = [
            ingest.inspect(app, data=png(1, seed=i), station="s1").inspection.model_version
            for i in range(40)
        ]
        assert again == versions  # the same image always meets the same model


def test_tokens_are_stored_as_hashes_only(app: context.Pipeline) -> None:
    token = tokens.create_token(app, station="s1", by="eve")
    assert tokens.authenticate_token(app, token=token) == "s1"
    assert tokens.authenticate_token(app, token=token + "x") is None
    assert tokens.authenticate_token(app, token="") is None
    with app.read() as s:
        (row,) = store.list_tokens(s)
    assert token not in row.token_hash and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    with app.write() as s:
        store.revoke_token(s, token_id=row.id or 0, now=app.clock())
    assert tokens.authenticate_token(app, token=token) is None


def test_users_have_argon2_passwords(app: context.Pipeline) -> None:
    accounts.create_user(app, name="ann", role="inspector", password="correct horse")
    assert accounts.verify_user(app, name="ann", password="correct horse") is not None
    assert accounts.verify_user(app, name="ann", password="wrong password") is None
    with pytest.raises(errors.InputError, match="already exists"):
        accounts.create_user(app, name="ann", role="engineer", password="another one")


def test_list_events_newest_first_filtered_by_station_and_kind(app: context.Pipeline, clock: FakeClock) -> None:
    partial(app)
    partial(app, station="s2")
    clock.advance(60)
    i = ingest.inspect(app, data=png(level_for(0.5)), station="s1").inspection
    logged = events.list_events(app)
    assert [(e.kind, e.station) for e in logged] == [
        ("inspection.created", "s1"), ("policy.changed", "s2"), ("policy.changed", "s1"),
    ]  # fmt: skip
    newest = logged[0]
    assert newest.inspection_id == i.id and newest.at == clock.now and newest.at.tzinfo is not None
    assert [e.kind for e in events.list_events(app, station="s2")] == ["policy.changed"]
    (changed,) = events.list_events(app, station="s1", kind="policy.changed")
    assert changed.actor == "eve" and changed.detail["new"]["level"] == "partial"
    assert len(events.list_events(app, limit=1)) == 1
    assert events.list_events(app, station="nowhere") == []
    with pytest.raises(errors.InputError, match="station"):
        events.list_events(app, station="../x")
    with pytest.raises(errors.InputError, match="limit"):
        events.list_events(app, limit=0)


def test_every_state_change_writes_an_event(app: context.Pipeline) -> None:
    partial(app)
    i = ingest.inspect(app, data=png(level_for(0.5)), station="s1").inspection
    review.claim_next(app, inspector="ann")
    review.submit_label(app, inspection_id=i.id, inspector="ann", label="ok")
    review.undo_last(app, inspector="ann")
    with app.read() as s:
        kinds = [e.kind for e in reversed(store.list_events(s))]
    assert kinds == [
        "policy.changed", "inspection.created", "queue.claimed", "review.labelled", "review.undone",
    ]  # fmt: skip
