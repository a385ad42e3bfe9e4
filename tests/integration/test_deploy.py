"""Registry and deployment: shadow, canary, blue-green promote, rollback, compare — on SQLite and
PostgreSQL, first with fake scorers (many items, fast), then against a running service with two
real model artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from inspection import store
from inspection.config import Settings
from inspection.core.policy import audit_draw
from inspection.core.stats import clopper_pearson_interval
from inspection.services import deploy, ingest, policies, tokens
from inspection.services.context import Pipeline
from inspection.vision.artifact import update_metrics
from tests.engineer_fixtures import (  # noqa: F401  (pytest fixtures)
    deployment_events,
    eng_app,
    install_models,
    phone_photos,
    photo_files,
    png_bytes,
    two_models,
    varied,
)


def _partial(app: Pipeline, station: str = "s1") -> None:
    policies.set_policy(
        app,
        station=station,
        by="erin",
        reason="test",
        level="partial",
        pass_below=0.2,
        reject_above=0.8,
        audit_rate=0.0,
    )


def _predictions(app: Pipeline, inspection_id: int) -> list[store.PredictionRow]:
    with app.read() as session:
        return store.predictions_for(session, inspection_id=inspection_id)


def test_shadow_candidate_scores_every_item_and_is_never_used(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    state = deploy.shadow(eng_app, version="v2", by="erin", reason="try v2 quietly")
    assert (state.production, state.candidate, state.mode) == ("v1", "v2", "shadow")
    for i in range(5):
        res = ingest.inspect(eng_app, data=png_bytes(20 + 40 * i, seed=i), station="s1")
        assert res.inspection.model_version == "v1"
        roles = {(p.role, p.model_version) for p in _predictions(eng_app, res.inspection.id)}
        assert roles == {("production", "v1"), ("shadow", "v2")}


def test_canary_share_matches_the_fraction_within_a_binomial_bound(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    deploy.canary(eng_app, version="v2", fraction=0.3, by="erin", reason="canary 30 %")
    n, by_candidate = 300, 0
    for i in range(n):
        res = ingest.inspect(eng_app, data=png_bytes(128, seed=i), station="s1")
        expected = audit_draw("canary:" + res.inspection.image_hash, seed=0) < 0.3
        assert (res.inspection.model_version == "v2") == expected  # chosen by image hash
        by_candidate += res.inspection.model_version == "v2"
    low, high = clopper_pearson_interval(by_candidate, n, confidence=0.999)
    assert low <= 0.3 <= high, by_candidate
    again = ingest.inspect(eng_app, data=png_bytes(128, seed=0), station="s1")
    first = audit_draw("canary:" + again.inspection.image_hash, seed=0) < 0.3
    assert (again.inspection.model_version == "v2") == first  # a re-sent image meets the same model


def test_canary_fraction_outside_zero_to_one_is_refused(eng_app: Pipeline) -> None:  # noqa: F811
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(deploy.DeployError, match="fraction"):
            deploy.canary(eng_app, version="v2", fraction=bad, by="erin")


def test_promotion_without_held_out_evidence_needs_force_and_a_reason(eng_app: Pipeline) -> None:  # noqa: F811
    with pytest.raises(deploy.DeployError, match="refused: no held-out comparison"):
        deploy.promote(eng_app, version="v2", by="erin")
    with pytest.raises(deploy.DeployError, match="--force needs a --reason"):
        deploy.promote(eng_app, version="v2", by="erin", force=True)
    res = deploy.promote(eng_app, version="v2", by="erin", reason="hotfix, evaluated offline", force=True)
    assert res.forced and res.previous == "v1" and deploy.current_state(eng_app).production == "v2"


def _held_out(settings: Settings, version: str, *, cand: float, prod: float, prod_version: str = "v1") -> None:
    update_metrics(
        settings.models_dir / version,
        {
            "retrain": {
                "heldout": {
                    "n": 40,
                    "candidate": {"auroc": cand, "accuracy": 0.9},
                    "production": {"version": prod_version, "auroc": prod, "accuracy": 0.9},
                }
            }
        },
    )


def test_a_candidate_worse_on_held_out_labels_is_refused_and_a_better_one_promoted(eng_app: Pipeline) -> None:  # noqa: F811
    _held_out(eng_app.settings, "v2", cand=0.81, prod=0.90)
    with pytest.raises(deploy.DeployError, match=r"worse than production v1: held-out auroc 0.8100 < production"):
        deploy.promote(eng_app, version="v2", by="erin", reason="looks fine")
    assert deploy.current_state(eng_app).production == "v1"
    _held_out(eng_app.settings, "v3", cand=0.95, prod=0.90)
    res = deploy.promote(eng_app, version="v3", by="erin", reason="better AUROC")
    assert not res.forced and res.state.production == "v3"


def test_rollback_withdraws_a_candidate_then_returns_to_the_previous_production(eng_app: Pipeline) -> None:  # noqa: F811
    with pytest.raises(deploy.DeployError, match="nothing to roll back"):
        deploy.rollback(eng_app, by="erin")
    deploy.promote(eng_app, version="v2", by="erin", reason="forced for the test", force=True)
    deploy.shadow(eng_app, version="v3", by="erin")
    state = deploy.rollback(eng_app, by="erin", reason="v3 misbehaves")
    assert (state.production, state.candidate, state.mode) == ("v2", None, "none")
    state = deploy.rollback(eng_app, by="erin", reason="v2 misbehaves")
    assert (state.production, state.candidate) == ("v1", None)
    roles = {m.version: m.roles for m in deploy.list_models(eng_app)}
    assert roles["v1"] == ("production",) and "previous" in roles["v2"]


def test_every_change_is_an_event_with_who_and_why(eng_app: Pipeline) -> None:  # noqa: F811
    deploy.shadow(eng_app, version="v2", by="ann", reason="r1")
    deploy.canary(eng_app, version="v2", fraction=0.1, by="bob", reason="r2")
    deploy.rollback(eng_app, by="cid", reason="r3")
    events = sorted(deployment_events(eng_app), key=lambda e: e.id or 0)
    assert [(e.kind, e.actor, e.detail["reason"]) for e in events] == [
        ("deployment.shadow", "ann", "r1"),
        ("deployment.canary", "bob", "r2"),
        ("deployment.rollback", "cid", "r3"),
    ]
    with eng_app.read() as session:
        rows = session.exec(store.select(store.DeploymentRow)).all()
    assert [r.actor for r in rows] == ["ann", "bob", "cid"]


def test_compare_reports_agreement_correlation_and_disagreements_with_image_links(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    deploy.shadow(eng_app, version="v3", by="erin")  # v3 scores 1 - brightness
    ids = [
        ingest.inspect(eng_app, data=png_bytes(lv, seed=i), station="s1").inspection.id
        for i, lv in enumerate((10, 30, 120, 128, 200, 240))
    ]
    cmp = deploy.compare(eng_app, version="v3")
    assert cmp.n == 6
    assert cmp.correlation is not None and cmp.correlation < -0.99
    assert cmp.disagreements_total == 6  # s and 1 - s fall on different sides of 0.5
    dis_ids = {d.inspection_id for d in cmp.disagreements}
    assert dis_ids <= set(ids)
    d = cmp.disagreements[0]
    assert d.link == f"/api/v1/inspections/{d.inspection_id}/image" and Path(d.image_path).is_file()
    assert cmp.agreement == 0.0
    assert [d.inspection_id for d in deploy.compare(eng_app, version="v3", limit=2).disagreements] == [ids[0], ids[5]]


def test_unknown_or_escaping_versions_are_refused(eng_app: Pipeline) -> None:  # noqa: F811
    for bad in ("../v1", "nope", "", ".hidden"):
        with pytest.raises(deploy.DeployError):
            deploy.shadow(eng_app, version=bad, by="erin")


# ---------------------------------------------------------------------------------------------
# Against a running service with two real model artifacts
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_running_service_applies_shadow_canary_promote_and_rollback_live(
    db_settings: Settings,
    two_models: dict[str, Path],  # noqa: F811
    phone_photos: Path,  # noqa: F811
) -> None:
    from inspection.api.app import create_app

    settings = db_settings.model_copy(update={"default_model": "model-a"})
    install_models(settings, two_models)
    photos = [p for p, _ in photo_files(phone_photos)]
    counter = iter(range(10_000))

    with TestClient(create_app(settings)) as client, Pipeline.create(settings) as engineer:
        server: Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
        _partial(server)
        token = tokens.create_token(server, station="s1")

        def post() -> dict[str, object]:
            i = next(counter)
            r = client.post(
                "/api/v1/inspections",
                data={"station": "s1"},
                files={"image": (f"p{i}.png", varied(photos[i % len(photos)], i), "image/png")},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201, r.text
            return r.json()

        assert {post()["model_version"] for _ in range(2)} == {"model-a"}

        # The engineer changes the deployment from another process-like pipeline: no restart.
        deploy.shadow(engineer, version="model-b", by="erin", reason="shadow b")
        shadowed = [post() for _ in range(3)]
        assert {s["model_version"] for s in shadowed} == {"model-a"}
        for s in shadowed:
            roles = {(p.role, p.model_version) for p in _predictions(server, int(s["id"]))}  # type: ignore[arg-type]
            assert ("shadow", "model-b") in roles

        deploy.canary(engineer, version="model-b", fraction=0.5, by="erin", reason="canary b")
        canaried = [post() for _ in range(40)]
        chosen = [audit_draw("canary:" + str(c["image_hash"]), seed=0) < 0.5 for c in canaried]
        assert [c["model_version"] == "model-b" for c in canaried] == chosen
        low, high = clopper_pearson_interval(sum(chosen), len(chosen), confidence=0.999)
        assert low <= 0.5 <= high

        deploy.promote(engineer, version="model-b", by="erin", reason="blue-green for the test", force=True)
        assert {post()["model_version"] for _ in range(3)} == {"model-b"}
        assert "model-a" in server._scorers  # the old colour stays loaded: rollback needs no load

        deploy.rollback(engineer, by="erin", reason="back")
        assert {post()["model_version"] for _ in range(3)} == {"model-a"}

        cmp = deploy.compare(engineer, version="model-b")
        assert cmp.n == 3 + sum(chosen)  # shadow items + canary items were scored by both


# ---------------------------------------------------------------------------------------------
# Safety (issue 11): rollback never re-deploys a forced model; a worse canary needs force; plans
# ---------------------------------------------------------------------------------------------


def test_rollback_never_puts_a_force_promoted_worse_model_back(eng_app: Pipeline) -> None:  # noqa: F811
    _held_out(eng_app.settings, "v2", cand=0.70, prod=0.90)
    with pytest.raises(deploy.DeployError, match="promotion refused"):
        deploy.promote(eng_app, version="v2", by="erin", reason="looks fine")
    deploy.promote(eng_app, version="v2", by="erin", reason="customer demo", force=True)
    assert deploy.rollback(eng_app, by="erin", reason="worse in the field").production == "v1"
    with pytest.raises(deploy.DeployError, match="nothing to roll back to") as err:
        deploy.rollback(eng_app, by="erin", reason="one more click")
    assert "--force" not in err.value.web
    assert deploy.current_state(eng_app).production == "v1"
    with pytest.raises(deploy.DeployError, match="nothing to roll back"):
        deploy.plan(eng_app, action="rollback")
    # bringing it back takes a forced promotion with a reason again
    with pytest.raises(deploy.DeployError, match="--force needs a --reason"):
        deploy.promote(eng_app, version="v2", by="erin", force=True)
    assert deploy.promote(eng_app, version="v2", by="erin", reason="again, on purpose", force=True).forced


def test_rollback_skips_forced_versions_and_returns_to_the_last_unforced_promotion(eng_app: Pipeline) -> None:  # noqa: F811
    _held_out(eng_app.settings, "v3", cand=0.95, prod=0.90)
    assert not deploy.promote(eng_app, version="v3", by="erin", reason="better").forced
    deploy.promote(eng_app, version="v2", by="erin", reason="forced trial", force=True)
    assert deploy.plan(eng_app, action="rollback").production == "v3"
    assert deploy.rollback(eng_app, by="erin", reason="v2 bad").production == "v3"
    assert deploy.rollback(eng_app, by="erin", reason="v3 bad too").production == "v1"  # v2 skipped
    assert deploy.rollback(eng_app, by="erin", reason="and back").production == "v3"
    kinds = [(e.kind, e.detail.get("forced")) for e in sorted(deployment_events(eng_app), key=lambda e: e.id or 0)]
    assert kinds[:2] == [("deployment.promote", False), ("deployment.promote", True)]


def test_a_worse_canary_needs_force_and_a_reason(eng_app: Pipeline) -> None:  # noqa: F811
    _held_out(eng_app.settings, "v2", cand=0.60, prod=0.90)
    with pytest.raises(deploy.DeployError, match="canary refused: v2 is worse") as err:
        deploy.canary(eng_app, version="v2", fraction=0.2, by="erin", reason="try")
    assert "--force" in str(err.value) and "--force" not in err.value.web and "Force" in err.value.web
    with pytest.raises(deploy.DeployError, match="--force needs a --reason"):
        deploy.canary(eng_app, version="v2", fraction=0.2, by="erin", force=True)
    assert deploy.current_state(eng_app).mode == "none"
    state = deploy.canary(eng_app, version="v2", fraction=0.2, by="erin", reason="field data needed", force=True)
    assert (state.candidate, state.mode) == ("v2", "canary")
    last = max(deployment_events(eng_app), key=lambda e: e.id or 0)
    assert last.kind == "deployment.canary" and last.detail["forced"] and "worse" in last.detail["problem"]
    # a shadow is never used, so it needs no evidence; a canary without evidence is how a model earns it
    assert deploy.shadow(eng_app, version="v3", by="erin").mode == "shadow"
    assert deploy.canary(eng_app, version="v3", fraction=0.1, by="erin").mode == "canary"


def test_a_plan_says_what_changes_and_is_applied_only_if_nothing_changed_since(eng_app: Pipeline) -> None:  # noqa: F811
    _held_out(eng_app.settings, "v3", cand=0.95, prod=0.90)
    p = deploy.plan(eng_app, action="promote", version="v3")
    assert (p.before.production, p.production, p.problem, p.forced) == ("v1", "v3", None, False)
    assert p.evidence is not None and p.evidence["candidate"]["auroc"] == 0.95
    with pytest.raises(deploy.DeployError, match="promotion refused: no held-out comparison"):
        deploy.plan(eng_app, action="promote", version="v2")
    forced = deploy.plan(eng_app, action="promote", version="v2", force=True, reason="why not")
    assert forced.forced and forced.problem
    canary = deploy.plan(eng_app, action="canary", version="v2", fraction=0.25)
    assert (canary.production, canary.candidate, canary.mode, canary.fraction) == ("v1", "v2", "canary", 0.25)
    deploy.shadow(eng_app, version="v2", by="someone-else", reason="meanwhile")
    with pytest.raises(deploy.DeployError, match="changed since this summary by someone-else"):
        deploy.apply_plan(eng_app, p, by="erin", reason="ok")
    fresh = deploy.plan(eng_app, action="promote", version="v3")
    assert deploy.apply_plan(eng_app, fresh, by="erin", reason="ok").production == "v3"
    back = deploy.plan(eng_app, action="rollback")
    assert (back.before.production, back.production, back.withdraws) == ("v3", "v1", None)


def test_confusion_cells_list_the_items_behind_them(eng_app: Pipeline) -> None:  # noqa: F811
    from tests.engineer_fixtures import label_queue

    policies.set_policy(eng_app, station="s1", by="erin", reason="t", level="shadow")
    truth = {}
    for i, (lv, label) in enumerate([(20, "ok"), (30, "scratch"), (220, "scratch"), (230, "ok"), (240, "scratch")]):
        truth[ingest.inspect(eng_app, data=png_bytes(lv, seed=i), station="s1").inspection.id] = label
    label_queue(eng_app, truth=truth, station="s1")
    n, items = deploy.confusion_items(eng_app, station="s1", model_scratch=True, inspector_scratch=True)
    assert n == 2 and all(Path(i.image_path).is_file() and "inspector scratch" in i.caption for i in items)
    n_fn, fn = deploy.confusion_items(eng_app, station="s1", model_scratch=False, inspector_scratch=True, limit=0)
    assert (n_fn, fn) == (1, [])
    assert deploy.confusion_items(eng_app, station=None, model_scratch=True, inspector_scratch=False)[0] == 1
