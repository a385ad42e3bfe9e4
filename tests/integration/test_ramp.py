"""The gradual ramp against the real store (SQLite and PostgreSQL) with fake-scored versions: it
advances on good evidence, holds on too little, rolls back on escapes or an alarm, pauses and aborts,
and audits the candidate's decisions at the boosted rate with weight 1 / rate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspection import store
from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.core.ramp import RampPlan, RampStep
from inspection.services import deploy, ingest, policies, ramp, reports, review
from inspection.services.context import Pipeline
from tests.engineer_fixtures import eng_app, fake_model_dirs, fake_pipeline, png_bytes  # noqa: F401  (pytest fixtures)
from tests.fakes import BrightnessScorer, Models

PLAN = RampPlan(
    (RampStep(0.0, min_items=10, max_disagreement=0.5, max_escape_upper=0.3),
     RampStep(0.5, min_items=10, max_disagreement=0.5, max_escape_upper=0.3),
     RampStep(1.0, min_items=0)),
    audit_rate=1.0,
).validate()  # fmt: skip


def _partial(app: Pipeline) -> None:
    policies.set_policy(app, station="s1", by="erin", reason="t", level="partial", pass_below=0.2,
                        reject_above=0.8, audit_rate=0.0)  # fmt: skip


def _label_queue(app: Pipeline, label: str) -> int:
    n = 0
    while (task := review.claim_next(app, inspector="ann", station="s1")) is not None:
        review.submit_label(app, inspection_id=task.inspection_id, inspector="ann", label=label)
        n += 1
    return n


def _ramp_events(app: Pipeline) -> list[str]:
    with app.read() as session:
        return [e.kind for e in reversed(store.list_events(session, limit=1000)) if e.kind.startswith("ramp.")]


def _through_shadow(app: Pipeline, seed: int = 0) -> None:
    """Start the ramp and earn the shadow step: 12 uncertain items (score 0.5), the inspector agrees."""
    _partial(app)
    out = ramp.start(app, version="v2", by="erin", reason="try v2", plan=PLAN)
    assert (out.status, out.step, out.step_label) == ("running", 0, "shadow")
    held = ramp.evaluate_ramp(app)
    assert held is not None and held.evidence is not None and held.evidence["decision"] == "hold"
    assert any("0 of 10 items" in r for r in held.evidence["reasons"])
    for i in range(12):
        ingest.inspect(app, data=png_bytes(128, seed=seed + i), station="s1")
    assert _label_queue(app, "scratch") == 12
    adv = ramp.evaluate_ramp(app)
    assert adv is not None and (adv.status, adv.step, adv.fraction) == ("running", 1, 0.5)
    state = deploy.current_state(app)
    assert (state.production, state.candidate, state.mode, state.canary_fraction) == ("v1", "v2", "canary", 0.5)


def _canary_items(app: Pipeline, n: int, seed: int) -> list[int]:
    ids = [ingest.inspect(app, data=png_bytes(20, seed=seed + i), station="s1").inspection.id for i in range(n)]
    return ids


def test_ramp_advances_step_by_step_and_promotes_only_at_the_end(eng_app: Pipeline) -> None:  # noqa: F811
    _through_shadow(eng_app)
    ids = _canary_items(eng_app, 4, seed=1000)
    held = ramp.evaluate_ramp(eng_app)
    assert held is not None and held.step == 1 and held.evidence is not None
    assert held.evidence["decision"] == "hold"  # too few items decided by the candidate
    assert deploy.current_state(eng_app).production == "v1"
    ids += _canary_items(eng_app, 50, seed=2000)
    with eng_app.read() as session:
        rows = [store.get_inspection(session, inspection_id=i) for i in ids]
    by_candidate = [r for r in rows if r is not None and r.model_version == "v2"]
    assert by_candidate and all(r.audit and r.audit_rate == 1.0 for r in by_candidate)  # boosted
    assert all(not r.audit and r.audit_rate is None for r in rows if r is not None and r.model_version == "v1")
    assert _label_queue(eng_app, "ok") == len(by_candidate)
    done = ramp.evaluate_ramp(eng_app)
    assert done is not None and done.status == "completed"
    state = deploy.current_state(eng_app)
    assert (state.production, state.candidate) == ("v2", None)
    assert _ramp_events(eng_app) == ["ramp.started", "ramp.advanced", "ramp.completed"]
    with eng_app.read() as session:
        promo = store.list_events(session, kind="deployment.promote", limit=5)
    assert len(promo) == 1 and promo[0].detail["forced"] is False and promo[0].detail["ramp"] is True
    assert ramp.evaluate_ramp(eng_app) is None  # nothing active any more


def test_ramp_rolls_back_on_escapes_among_the_candidates_audited_items(eng_app: Pipeline) -> None:  # noqa: F811
    _through_shadow(eng_app)
    _canary_items(eng_app, 40, seed=3000)
    _label_queue(eng_app, "scratch")  # every audited pass of the candidate was a scratched phone
    out = ramp.evaluate_ramp(eng_app)
    assert out is not None and out.status == "rolled_back" and out.evidence is not None
    assert "escape rate" in out.evidence["reasons"][0]
    state = deploy.current_state(eng_app)
    assert (state.production, state.candidate, state.mode) == ("v1", None, "none")
    with eng_app.read() as session:
        ev = store.list_events(session, kind="ramp.rolled_back", limit=5)
    assert ev and ev[0].actor == "ramp" and ev[0].detail["evidence"]["escape"]["n"] > 0
    # the weighted audit report counts the candidate's audits at 1 / 1.0 = 1 (all of them)
    assert reports.audit_report(eng_app, station="s1").escape.rate == pytest.approx(1.0)


def test_ramp_rolls_back_on_an_open_alarm(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    ramp.start(eng_app, version="v2", by="erin", reason="try", plan=PLAN)
    with eng_app.write() as session:
        store.open_alarm(session, row=store.AlarmRow(station="s1", rule="score_drift", metric="score",
                                                     severity="critical", opened_at=eng_app.clock()))  # fmt: skip
    out = ramp.evaluate_ramp(eng_app)
    assert out is not None and out.status == "rolled_back" and out.evidence is not None
    assert out.evidence["reasons"][0].startswith("open alarm: s1: score_drift")
    assert deploy.current_state(eng_app).candidate is None


def test_pause_holds_resume_continues_abort_withdraws(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    ramp.start(eng_app, version="v2", by="erin", reason="try", plan=PLAN)
    with pytest.raises(deploy.DeployError, match="abort it first"):
        ramp.start(eng_app, version="v3", by="erin", reason="two at once", plan=PLAN)
    assert ramp.pause(eng_app, by="erin", reason="line stop").status == "paused"
    for i in range(12):
        ingest.inspect(eng_app, data=png_bytes(128, seed=i), station="s1")
    _label_queue(eng_app, "scratch")
    held = ramp.evaluate_ramp(eng_app)
    assert held is not None and held.status == "paused" and held.step == 0
    assert ramp.resume(eng_app, by="erin").status == "running"
    out = ramp.abort(eng_app, by="erin", reason="changed my mind")
    assert out.status == "aborted"
    assert deploy.current_state(eng_app).candidate is None
    assert _ramp_events(eng_app) == ["ramp.started", "ramp.paused", "ramp.resumed", "ramp.aborted"]
    with pytest.raises(deploy.DeployError, match="no ramp"):
        ramp.pause(eng_app, by="erin")


def test_an_engineers_deployment_change_ends_the_ramp(eng_app: Pipeline) -> None:  # noqa: F811
    _partial(eng_app)
    ramp.start(eng_app, version="v2", by="erin", reason="try", plan=PLAN)
    deploy.rollback(eng_app, by="erin", reason="manual")
    out = ramp.evaluate_ramp(eng_app)
    assert out is not None and out.status == "aborted"


def test_cli_models_ramp_start_status_pause_resume_abort(
    db_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(db_settings.models_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("INSPECTION_DEFAULT_MODEL", "v1")
    fake_model_dirs(db_settings, ["v1", "v2"])
    cli = build_app(scorer_factory=lambda _s: Models({v: BrightnessScorer(v) for v in ("v1", "v2")}))

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["models", "ramp", *args])
        assert "Traceback" not in result.output, result.output
        return result.exit_code, result.output

    assert run("status") == (0, "no ramp yet\n")
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"steps": [{"fraction": 0.5}]}))
    code, out = run("start", "v2", "--plan", str(bad), "--by", "erin")
    assert code == 2 and "at least two steps" in out
    code, out = run("start", "v2", "--by", "erin", "--reason", "new lighting", "--audit-rate", "0.3")
    assert code == 0 and "[shadow] → 5 % → 25 % → 50 % → 100 %" in out and "running" in out
    code, out = run("status", "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "running" and data["plan"]["audit_rate"] == 0.3
    assert run("pause", "--by", "erin", "--reason", "line stop")[1].count("paused") == 1
    assert run("pause", "--by", "erin")[0] == 2  # already paused
    code, out = run("evaluate")
    assert code == 0 and "ramp is paused" in out
    assert "running" in run("resume", "--by", "erin")[1]
    code, out = run("abort", "--by", "erin", "--reason", "enough")
    assert code == 0 and "aborted" in out
    assert run("abort", "--by", "erin")[0] == 2  # nothing running


def test_boosted_audits_weigh_one_over_their_own_rate(eng_app: Pipeline) -> None:  # noqa: F811
    """Production's audits weigh 1 / policy rate, the candidate's 1 / the ramp's rate (stored per item)."""
    policies.set_policy(eng_app, station="s1", by="erin", reason="t", level="partial", pass_below=0.2,
                        reject_above=0.8, audit_rate=0.5)  # fmt: skip
    ramp.start(eng_app, version="v2", by="erin", reason="t", plan=PLAN)
    deploy.canary(eng_app, version="v2", fraction=0.5, by="erin", reason="jump for the test")
    _canary_items(eng_app, 60, seed=5000)
    _label_queue(eng_app, "ok")
    with eng_app.read() as session:
        rows = store.labelled_history(session, station="s1", audit=True)
        model = {i.id: i.model_version for i in (store.get_inspection(session, inspection_id=r.inspection_id)
                                                 for r in rows) if i is not None}  # fmt: skip
    weights = {(model[r.inspection_id], r.weight) for r in rows}
    assert weights == {("v1", 2.0), ("v2", 1.0)}


def test_the_monitoring_loop_rolls_the_ramp_back_on_an_alarm(db_settings: Settings) -> None:
    from inspection.api.monitoring import MonitorLoop

    settings = db_settings.model_copy(update={"monitor_interval_seconds": 0.05})
    with fake_pipeline(settings, ["v1", "v2"]) as app:
        ramp.start(app, version="v2", by="erin", reason="t", plan=PLAN)
        with app.write() as session:
            store.open_alarm(session, row=store.AlarmRow(station="s1", rule="brightness", metric="brightness",
                                                         severity="warning", opened_at=app.clock()))  # fmt: skip
        loop = MonitorLoop(app).start()
        try:
            deadline = time.monotonic() + 20
            while (out := ramp.status(app)) is not None and out.status == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            loop.stop()
        assert out is not None and out.status == "rolled_back"
        assert deploy.current_state(app).candidate is None
