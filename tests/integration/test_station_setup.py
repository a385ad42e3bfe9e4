"""Per-station setup end to end on a real database: versions with who/why, the localisation passed to
the scorer, gate overrides applied live in ingest, recalibration fitted on blind labels only (and
refused with too few), the recalibrated score used by live decisions and by the what-if/suggestion.
The last test runs the shipped baseline: roi and frame modes never say "no phone found"."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inspection import store
from inspection.config import Settings
from inspection.core.calibration import apply_temperature
from inspection.core.domain import Localisation, LocalisationMode, Prediction, RouteKind
from inspection.core.gate import GateRanges, MetricRange, check
from inspection.core.scoring import Scored
from inspection.services import context, ingest, policies, review, stations, tuning
from inspection.services.errors import InputError
from tests.fakes import FakeClock, Models, level_for, png

TRUE_T = 2.5  # the fixture's scores are this over-confident: p = sigmoid(T * logit(q)), q the true rate


class QualityScorer:
    """Score = mean grey / 255 (BrightnessScorer's rule) plus the gate's quality metrics and verdict
    as the real Predictor reports them; records the localisation it was asked for."""

    def __init__(self, version: str = "fake-q") -> None:
        self.version = version
        self.gate_ranges = GateRanges({"brightness": MetricRange(lo=60.0, hi=200.0, reference=127.0)})
        self.localisations: list[Localisation | None] = []

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        self.localisations.append(localisation)
        out = []
        for img in images:
            mean = float(np.mean(img))
            quality = {"brightness": mean, "region_px": 512.0}
            out.append(Scored(Prediction(self.version, mean / 255.0), None, check(quality, self.gate_ranges), quality))
        return out


@pytest.fixture
def scorer() -> QualityScorer:
    return QualityScorer()


@pytest.fixture
def app(db_settings: Settings, scorer: QualityScorer) -> Iterator[context.Pipeline]:
    # the production model "baseline" declares the version its predictions record (as a real artifact does)
    (db_settings.models_dir / "baseline").mkdir(parents=True)
    (db_settings.models_dir / "baseline" / "model.json").write_text('{"version": "fake-q"}')
    with context.Pipeline.create(db_settings, scorer_factory=Models({"baseline": scorer}), clock=FakeClock()) as ctx:
        yield ctx


def _policy(app: context.Pipeline, level: str, station: str = "s1") -> None:
    values = {"level": level, "pass_below": 0.1, "reject_above": 0.9, "audit_rate": 0.0}
    policies.set_policy(app, station=station, by="eve", reason="test", **values)  # type: ignore[arg-type]


def test_setup_versions_keep_who_why_and_the_old_values(app: context.Pipeline) -> None:
    assert stations.get_setup(app, station="s1").version == 0  # never configured: automatic, model ranges
    stations.set_setup(app, station="s1", by="eve", reason="camera sees only the screen", mode="frame")
    s2 = stations.set_setup(
        app, station="s1", by="bob", reason="fixed jig", roi=(0.1, 0.2, 0.5, 0.6),
        gate={"brightness": {"lo": 30}},
    )  # fmt: skip
    assert s2.version == 2 and s2.localisation == Localisation(LocalisationMode.ROI, (0.1, 0.2, 0.5, 0.6))
    assert s2.gate == {"brightness": MetricRange(30.0, None)}
    s3 = stations.set_setup(app, station="s1", by="eve", reason="undo gate", gate={"brightness": None})
    assert s3.gate == {} and s3.localisation.mode is LocalisationMode.ROI  # what was not given is kept
    hist = stations.setup_history(app, station="s1")
    assert [(h.setup.version, h.created_by, h.reason) for h in hist] == [
        (1, "eve", "camera sees only the screen"), (2, "bob", "fixed jig"), (3, "eve", "undo gate"),
    ]  # fmt: skip
    assert hist[0].old is None and hist[1].old is not None and hist[1].old["localisation"] == "frame"
    assert hist[2].old is not None and hist[2].old["gate"] == {"brightness": {"lo": 30.0, "hi": None}}
    with app.read() as s:
        kinds = [e.kind for e in store.list_events(s, station="s1")]
    assert kinds.count("station.setup_changed") == 3


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "roi"}, "roi mode needs a rectangle"),
        ({"roi": (0.5, 0.5, 0.6, 0.2)}, "within the frame"),
        ({"roi": (0.1, 0.1, 0.0, 0.2)}, "positive"),
        ({"mode": "sideways"}, "unknown localisation"),
        ({"gate": {"exposure": {"lo": 1}}}, "unknown gate metric"),
        ({"gate": {"brightness": {"lo": 90, "hi": 50}}}, "is above hi"),
        ({"gate": {"blockiness": {"lo": 1}}}, "no lower bound"),
        ({"gate": {"brightness": {"lo": "dark"}}}, "must be a number"),
        ({"gate": {"brightness": {}}}, "needs lo or hi"),
    ],
)
def test_invalid_setups_are_refused_with_a_reason(app: context.Pipeline, kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(InputError, match=words):
        stations.set_setup(app, station="s1", by="eve", reason="x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="reason is required"):
        stations.set_setup(app, station="s1", by="eve", reason=" ", mode="frame")
    assert stations.get_setup(app, station="s1").version == 0


def test_the_station_localisation_reaches_the_scorer(app: context.Pipeline, scorer: QualityScorer) -> None:
    _policy(app, "partial")
    ingest.inspect(app, data=png(100, seed=1), station="s1")
    stations.set_setup(app, station="s1", by="eve", reason="jig", roi=(0.25, 0.25, 0.5, 0.5))
    ingest.inspect(app, data=png(100, seed=2), station="s1")
    stations.set_setup(app, station="s1", by="eve", reason="close-up", mode="frame")
    ingest.inspect(app, data=png(100, seed=3), station="s1")
    assert scorer.localisations == [
        None, Localisation(LocalisationMode.ROI, (0.25, 0.25, 0.5, 0.5)), Localisation(LocalisationMode.FRAME),
    ]  # fmt: skip


def test_gate_override_makes_a_stopped_item_decidable_and_the_reverse(app: context.Pipeline) -> None:
    _policy(app, "partial", station="s1")
    dark = png(20, seed=1)  # score 0.08 (< pass_below) but brightness 20 is below the model's range (60)
    first = ingest.inspect(app, data=dark, station="s1").inspection
    assert first.route is RouteKind.REVIEW and first.reason.startswith("domain gate: too dark")
    stations.set_setup(app, station="s1", by="eve", reason="dark table on line 2", gate={"brightness": {"lo": 15}})
    again = ingest.inspect(app, data=png(20, seed=2), station="s1").inspection
    assert again.route is RouteKind.AUTO_PASS, again.reason
    # the reverse: a narrower upper bound stops what the model's range accepted (score 0.27 < 0.3)
    _policy(app, "partial", station="s2")
    policies.set_policy(app, station="s2", by="eve", reason="test", pass_below=0.3)
    assert ingest.inspect(app, data=png(70, seed=3), station="s2").inspection.route is RouteKind.AUTO_PASS
    stations.set_setup(app, station="s2", by="eve", reason="glare", gate={"brightness": {"hi": 65}})
    stopped = ingest.inspect(app, data=png(70, seed=4), station="s2").inspection
    assert stopped.route is RouteKind.REVIEW and stopped.reason.startswith("domain gate: too bright"), stopped.reason


def _label_all(app: context.Pipeline, labels: dict[int, str], station: str) -> None:
    while (task := review.claim_next(app, inspector="ann", station=station)) is not None:
        review.submit_label(app, inspection_id=task.inspection_id, inspector="ann", label=labels[task.inspection_id])


def _shifted(n: int, seed: int) -> list[tuple[float, bool]]:
    """(score, is_scratch) with a known miscalibration: the true scratch rate is sigmoid(logit(p) / TRUE_T)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.2, n)  # logit of the true rate
    q = 1.0 / (1.0 + np.exp(-z))
    p = apply_temperature(q, 1.0 / TRUE_T)  # over-confident scores
    p = np.round(p * 255) / 255  # what a grey level can express (BrightnessScorer's rule)
    return [(float(s), bool(y)) for s, y in zip(p, rng.random(n) < q, strict=True)]


def _ingest_labelled(app: context.Pipeline, pairs: list[tuple[float, bool]], station: str, seed0: int) -> None:
    labels = {}
    for i, (p, y) in enumerate(pairs):
        got = ingest.inspect(app, data=png(level_for(p), seed=seed0 + i), station=station).inspection
        labels[got.id] = "scratch" if y else "ok"
    _label_all(app, labels, station)


def test_recalibration_on_blind_labels_lowers_ece_and_is_applied_live(
    app: context.Pipeline, scorer: QualityScorer
) -> None:
    scorer.gate_ranges = GateRanges()  # the fixture's grey levels are all "images" the gate accepts
    _policy(app, "shadow")  # the model runs hidden: every label is blind
    with pytest.raises(stations.RecalibrationRefused, match="too few blind labels"):
        stations.recalibrate(app, station="s1", by="eve")
    _ingest_labelled(app, _shifted(30, seed=1), "s1", seed0=0)
    with pytest.raises(stations.RecalibrationRefused, match=r"20 more labels \(have 30, need 50\)"):
        stations.recalibrate(app, station="s1", by="eve")
    _ingest_labelled(app, _shifted(220, seed=2), "s1", seed0=1000)
    # labels given while the model's output was shown must not count: label these against the score
    _policy(app, "ai_assist")
    _ingest_labelled(app, [(0.99, False)] * 40, "s1", seed0=5000)
    out = stations.recalibrate(app, station="s1", by="eve", reason="new line")
    assert out.n_blind == 250 and out.n_skipped == 40
    cal = out.setup.calibration
    assert cal is not None and cal.model_version == "fake-q" and cal.n_labels == 250
    assert 1.8 < cal.temperature < 3.5, cal
    assert cal.ece_after is not None and cal.ece_before is not None and cal.ece_after < cal.ece_before - 0.04
    assert out.setup.version == 1 and stations.setup_history(app, station="s1")[0].reason == "new line"

    # live: the decision score is recalibrated, the prediction row and the event keep the raw score
    _policy(app, "partial")
    got = ingest.inspect(app, data=png(level_for(0.95), seed=9000), station="s1").inspection
    with app.read() as s:
        pred = store.predictions_for(s, inspection_id=got.id)[0]
        event = [e for e in store.list_events(s, station="s1") if e.inspection_id == got.id][0]
    raw = pred.score
    assert raw is not None and raw == pytest.approx(0.95, abs=0.005) and event.detail["raw_score"] == raw
    expected = float(apply_temperature([raw], cal.temperature)[0])
    assert got.score == pytest.approx(expected) and got.route is RouteKind.REVIEW  # ~0.77: no longer "reject"
    # another station is not recalibrated
    _policy(app, "partial", station="s2")
    other = ingest.inspect(app, data=png(level_for(0.95), seed=9001), station="s2").inspection
    assert other.score == pytest.approx(0.95, abs=0.005) and other.route is RouteKind.AUTO_REJECT

    # the what-if and the suggestion replay recalibrated scores for this station
    _version, history, _stats = tuning.station_history(app, station="s1")
    with app.read() as s:
        raw_rows = store.labelled_history(s, station="s1", scores=store.ScoreFilter())
    assert len(history) == len(raw_rows)
    assert [h.score for h in history] == pytest.approx(
        apply_temperature([r.score for r in raw_rows], cal.temperature).tolist()
    )
    assert tuning.suggest_thresholds(app, station="s1", max_escape=0.05).model_version == "baseline"


def test_a_calibration_fitted_for_another_model_is_not_applied(app: context.Pipeline, scorer: QualityScorer) -> None:
    scorer.gate_ranges = GateRanges()
    _policy(app, "partial")
    with app.write() as s:
        store.add_station_setup(
            s,
            row=store.StationSetupRow(
                station="s1", version=1, temperature=3.0, ece_before=0.2, ece_after=0.05, n_labels=80,
                calibration_model="old-model", created_by="eve", created_at=app.clock(), reason="old",
            ),
        )  # fmt: skip
    got = ingest.inspect(app, data=png(level_for(0.95), seed=1), station="s1").inspection
    assert got.score == pytest.approx(0.95, abs=0.005) and got.route is RouteKind.AUTO_REJECT


def test_cli_station_show_set_history(app: context.Pipeline, db_settings: Settings) -> None:
    from inspection.cli.main import build_app

    cli, runner = build_app(), CliRunner()
    env = {
        "INSPECTION_DATA_DIR": str(db_settings.data_dir), "INSPECTION_DATABASE_URL": db_settings.database_url,
        "INSPECTION_MODELS_DIR": str(db_settings.models_dir),
    }  # fmt: skip
    args = ["--station", "s1", "--roi", "0.1,0.1,0.8,0.8", "--gate", "brightness:20:", "--by", "eve"]
    res = runner.invoke(cli, ["station", "set", *args, "--reason", "jig"], env=env)
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["station", "show", "--station", "s1", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert '"localisation": "roi"' in res.output and '"lo": 20.0' in res.output
    res = runner.invoke(cli, ["station", "history", "--station", "s1"], env=env)
    assert res.exit_code == 0 and "eve" in res.output and "jig" in res.output, res.output
    res = runner.invoke(cli, ["station", "recalibrate", "--station", "s1", "--by", "eve"], env=env)
    assert res.exit_code != 0 and "too few blind labels" in res.output, res.output
    args = ["--station", "s1", "--gate", "exposure:1:", "--by", "eve", "--reason", "x"]
    res = runner.invoke(cli, ["station", "set", *args], env=env)
    assert res.exit_code != 0 and "unknown gate metric" in res.output, res.output


BASELINE = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.slow
@pytest.mark.parametrize("setup", [{"mode": "frame"}, {"roi": (0.1, 0.1, 0.8, 0.8)}])
def test_roi_and_frame_modes_never_say_no_phone_found(tmp_path: Path, setup: dict[str, object]) -> None:
    from inspection.vision.degrade import no_phone

    settings = Settings(data_dir=tmp_path / "data", models_dir=BASELINE, database_url="", threads=1)
    with context.Pipeline.create(settings) as app:
        policies.set_policy(app, station="auto", by="t", reason="t", level="partial")
        policies.set_policy(app, station="fixed", by="t", reason="t", level="partial")
        stations.set_setup(app, station="fixed", by="t", reason="screen only", **setup)  # type: ignore[arg-type]
        for kind in ("notebook", "texture", "circuit_board"):
            data = no_phone(kind, 2, seed=4300).data
            fixed = ingest.inspect(app, data=data, station="fixed").inspection
            assert "no phone found" not in (fixed.reason or ""), (kind, fixed.reason)
            assert fixed.score is not None, (kind, fixed.reason)
        # the automatic mode on the same frames finds no phone (what the fixed modes avoid)
        auto = ingest.inspect(app, data=no_phone("notebook", 2, seed=4300).data, station="auto").inspection
        assert auto.route is RouteKind.REVIEW
