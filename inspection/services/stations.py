"""Per-station setup, versioned like the policy: how the inspected region is found (automatic, a
fixed region of interest, or the whole frame), the engineer's domain-gate overrides, and the score
recalibration fitted on the station's own blind labels.

Applied live by ingest (`localisation_arg`, `gate_for`, `recalibrated`):
- the Localisation goes to the scorer (auto is passed as None, the scorer's default);
- with overrides, the gate is re-checked on the scorer's quality metrics against the model's ranges
  with the station's lo/hi replacing the model's, side by side (a side left None keeps the model's
  bound; the absolute floors of `core.gate` always hold);
- with a calibration fitted for the model version that scored the item, the decision score is
  p' = sigmoid(logit(p) / t). The prediction row keeps the model's raw score (so a recalibration is
  always fitted on raw scores, never on already recalibrated ones); the inspection row and the
  `inspection.created` event carry the recalibrated score, the event also `raw_score`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.calibration import CalibrationRefused, TemperatureFit, apply_temperature, fit_temperature
from inspection.core.domain import Label, LabelledScore, Localisation, LocalisationMode, Prediction
from inspection.core.gate import METRICS, GateFailure, GateRanges, MetricRange, check
from inspection.core.scoring import Scored
from inspection.services import registry
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.validation import validate_name, validate_station
from inspection.vision.artifact_meta import read_meta_json

__all__ = [
    "RecalibrationRefused",
    "RecalibrationResult",
    "SetupRecord",
    "StationCalibration",
    "StationSetup",
    "gate_for",
    "get_setup",
    "merged_ranges",
    "model_gate_ranges",
    "parse_gate_overrides",
    "recalibrate",
    "recalibrated",
    "recalibrated_history",
    "sample_image",
    "set_setup",
    "setup_from_row",
    "setup_history",
    "setup_to_dict",
]

_SPECS = {s.name: s for s in METRICS}


class RecalibrationRefused(InputError):
    """Too few blind labels (or of one class) for the station and model: the message says how many."""


@dataclass(frozen=True)
class StationCalibration:
    temperature: float
    ece_before: float | None
    ece_after: float | None
    n_labels: int
    model_version: str  # what the predictions it was fitted on record; applied only to that version


@dataclass(frozen=True)
class StationSetup:
    station: str
    version: int = 0  # 0: never configured (automatic localisation, the model's ranges, raw scores)
    localisation: Localisation = field(default_factory=Localisation)
    gate: Mapping[str, MetricRange] = field(default_factory=dict)  # lo/hi overrides per gate metric
    calibration: StationCalibration | None = None

    @property
    def localisation_arg(self) -> Localisation | None:
        """What ingest passes to the scorer: None for automatic (every scorer's default)."""
        return None if self.localisation.mode is LocalisationMode.AUTO else self.localisation


@dataclass(frozen=True)
class SetupRecord:
    setup: StationSetup
    created_by: str
    created_at: datetime
    reason: str
    old: dict[str, Any] | None


@dataclass(frozen=True)
class RecalibrationResult:
    setup: StationSetup
    fit: TemperatureFit
    n_blind: int  # blind labels with a valid score of the model (what the fit used)
    n_skipped: int  # labels of the station left out because the person saw the model's output


# Rows and values


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def setup_from_row(station: str, row: store.StationSetupRow | None) -> StationSetup:
    if row is None:
        return StationSetup(station=station)
    roi = tuple(float(v) for v in row.roi) if row.roi else None
    cal = None
    if row.temperature is not None and row.calibration_model:
        cal = StationCalibration(
            row.temperature, row.ece_before, row.ece_after, int(row.n_labels or 0), row.calibration_model
        )
    gate = {k: MetricRange(_float_or_none(v.get("lo")), _float_or_none(v.get("hi"))) for k, v in row.gate.items()}
    return StationSetup(
        station=row.station,
        version=row.version,
        localisation=Localisation(LocalisationMode(row.localisation), roi),  # type: ignore[arg-type]
        gate=gate,
        calibration=cal,
    )


def _gate_json(gate: Mapping[str, MetricRange]) -> dict[str, dict[str, float | None]]:
    return {k: {"lo": r.lo, "hi": r.hi} for k, r in sorted(gate.items())}


def setup_to_dict(s: StationSetup) -> dict[str, Any]:
    """One JSON shape for the CLI's --json, the UI and the events' old/new values."""
    cal = s.calibration
    return {
        "station": s.station,
        "version": s.version,
        "localisation": s.localisation.mode.value,
        "roi": list(s.localisation.roi) if s.localisation.roi else None,
        "gate": _gate_json(s.gate),
        "calibration": None
        if cal is None
        else {
            "temperature": cal.temperature,
            "ece_before": cal.ece_before,
            "ece_after": cal.ece_after,
            "n_labels": cal.n_labels,
            "model_version": cal.model_version,
        },
    }


def get_setup(app: Pipeline, *, station: str) -> StationSetup:
    station = validate_station(station)
    with app.read() as session:
        return setup_from_row(station, store.current_station_setup(session, station=station))


def setup_history(app: Pipeline, *, station: str) -> list[SetupRecord]:
    station = validate_station(station)
    with app.read() as session:
        rows = store.station_setup_history(session, station=station)
    return [SetupRecord(setup_from_row(station, r), r.created_by, r.created_at, r.reason, r.old) for r in rows]


# Validation


def parse_gate_overrides(raw: Mapping[str, Any]) -> dict[str, MetricRange | None]:
    """{metric: {"lo": x, "hi": y} | None} checked against `core.gate.METRICS`: known metric, finite
    numbers, lo <= hi, a side the metric has (e.g. blockiness has no lower bound). None removes the
    station's override of that metric (the model's range applies again)."""
    out: dict[str, MetricRange | None] = {}
    for name, value in raw.items():
        spec = _SPECS.get(name)
        if spec is None:
            raise InputError(f"unknown gate metric {name!r}; choose from {', '.join(_SPECS)}")
        if value is None:
            out[name] = None
            continue
        if not isinstance(value, Mapping) or set(value) - {"lo", "hi"}:
            raise InputError(f"gate override of {name} must be {{'lo': number, 'hi': number}}")
        lo, hi = (_bound(name, side, value.get(side)) for side in ("lo", "hi"))
        if lo is None and hi is None:
            raise InputError(f"gate override of {name} needs lo or hi (or remove it)")
        if lo is not None and spec.low is None:
            raise InputError(f"{name} has no lower bound to override")
        if hi is not None and spec.high is None:
            raise InputError(f"{name} has no upper bound to override")
        if lo is not None and hi is not None and lo > hi:
            raise InputError(f"gate override of {name}: lo {lo:g} is above hi {hi:g}")
        out[name] = MetricRange(lo, hi)
    return out


def _bound(name: str, side: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"gate override {name}.{side} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"gate override {name}.{side} must be a finite number")
    return number


def _localisation(mode: str | LocalisationMode | None, roi: Sequence[float] | None) -> Localisation | None:
    """The new Localisation (None: keep the current one). A rectangle alone means roi mode."""
    if mode is None and roi is None:
        return None
    try:
        parsed = LocalisationMode(mode) if mode is not None else LocalisationMode.ROI
    except ValueError:
        raise InputError(f"unknown localisation {mode!r}; choose auto, roi or frame") from None
    if roi is not None and parsed is not LocalisationMode.ROI:
        raise InputError(f"a rectangle is only used in roi mode, not {parsed.value}")
    try:
        return Localisation(parsed, tuple(roi) if roi is not None else None)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None


# Storing versions


def _store_version(app: Pipeline, *, station: str, by: str, reason: str, kind: str, change: Any) -> StationSetup:
    """Read the setup in force, apply `change(old) -> new`, store it as the next version with who/why
    and an event, in one transaction."""
    now = app.clock()
    try:
        with app.write() as session:
            old = setup_from_row(station, store.current_station_setup(session, station=station))
            new = replace(change(old), station=station, version=old.version + 1)
            cal = new.calibration
            store.add_station_setup(
                session,
                row=store.StationSetupRow(
                    station=station,
                    version=new.version,
                    localisation=new.localisation.mode.value,
                    roi=list(new.localisation.roi) if new.localisation.roi else None,
                    gate=_gate_json(new.gate),
                    temperature=cal.temperature if cal else None,
                    ece_before=cal.ece_before if cal else None,
                    ece_after=cal.ece_after if cal else None,
                    n_labels=cal.n_labels if cal else None,
                    calibration_model=cal.model_version if cal else None,
                    created_by=by,
                    created_at=now,
                    reason=reason,
                    old=setup_to_dict(old) if old.version > 0 else None,
                ),
            )
            store.add_event(
                session,
                kind=kind,
                at=now,
                actor=by,
                station=station,
                detail={"old": setup_to_dict(old), "new": setup_to_dict(new), "reason": reason},
            )
    except IntegrityError:
        raise InputError(f"the setup of {station} was changed concurrently; look at it again and retry") from None
    return new


def _who_why(station: str, by: str, reason: str) -> tuple[str, str, str]:
    station = validate_station(station)
    by = validate_name(by, "--by (who changes the station setup)")
    if not (reason or "").strip():
        raise InputError("a reason is required: say why the station setup changes")
    return station, by, reason.strip()


def set_setup(
    app: Pipeline,
    *,
    station: str,
    by: str,
    reason: str,
    mode: str | LocalisationMode | None = None,
    roi: Sequence[float] | None = None,
    gate: Mapping[str, Any] | None = None,
    replace_gate: bool = False,
    clear_calibration: bool = False,
) -> StationSetup:
    """Store a new setup version; what is not given is kept. `gate` entries override (or, as None,
    remove) single metrics; `replace_gate` drops every override not in `gate`. InputError with a
    message a person can act on for anything invalid."""
    station, by, reason = _who_why(station, by, reason)
    overrides = parse_gate_overrides(gate or {})
    new_loc = _localisation(mode, roi)

    def change(old: StationSetup) -> StationSetup:
        loc = old.localisation if new_loc is None else new_loc
        merged: dict[str, MetricRange] = {} if replace_gate else dict(old.gate)
        for name, rng in overrides.items():
            if rng is None:
                merged.pop(name, None)
            else:
                merged[name] = rng
        cal = None if clear_calibration else old.calibration
        return replace(old, localisation=loc, gate=merged, calibration=cal)

    return _store_version(app, station=station, by=by, reason=reason, kind="station.setup_changed", change=change)


def _blind_pairs(app: Pipeline, *, station: str, names: set[str]) -> tuple[list[float], list[bool], Counter[str], int]:
    """(scores, is_scratch, model versions seen, labels skipped as not blind): one label per item,
    of the station, scored by one of `names`, where the person did not see the model's output."""
    scores_filter = store.ScoreFilter(versions=names, roles=None, valid_only=True)
    with app.read() as session:
        rows = store.labelled_history(session, station=station, scores=scores_filter)
    seen: set[int] = set()
    scores: list[float] = []
    labels: list[bool] = []
    versions: Counter[str] = Counter()
    skipped = 0
    for r in rows:
        if r.inspection_id in seen or r.score is None:
            continue
        seen.add(r.inspection_id)
        if not r.blind:  # the model's output was shown: the label may lean on it
            skipped += 1
            continue
        scores.append(float(r.score))
        labels.append(r.label == Label.SCRATCH.value)
        versions[str(r.model_version)] += 1
    return scores, labels, versions, skipped


def recalibrate(
    app: Pipeline, *, station: str, by: str, reason: str = "", model_version: str | None = None
) -> RecalibrationResult:
    """Fit a temperature on the station's blind labels (shadow reviews, audits, items stopped by the
    gate or the fail-safe) scored by `model_version` (default: the production model) and store it as
    a new setup version. RecalibrationRefused when there are too few."""
    station, by, reason = _who_why(station, by, reason or "recalibration from blind labels")
    version = model_version or registry.current_state(app).production
    scores, labels, versions, skipped = _blind_pairs(
        app, station=station, names=registry.declared_versions(app.settings.models_dir, version)
    )
    try:
        fit = fit_temperature(scores, labels)
    except CalibrationRefused as exc:
        raise RecalibrationRefused(f"{station}, model {version}: {exc}") from None
    recorded = versions.most_common(1)[0][0]
    cal = StationCalibration(fit.temperature, _finite(fit.ece_before), _finite(fit.ece_after), fit.n_labels, recorded)
    setup = _store_version(
        app, station=station, by=by, reason=reason, kind="station.recalibrated",
        change=lambda old: replace(old, calibration=cal),
    )  # fmt: skip
    return RecalibrationResult(setup, fit, len(scores), skipped)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# Applied live (ingest) and in replays (tuning)


def merged_ranges(base: GateRanges, overrides: Mapping[str, MetricRange]) -> GateRanges:
    """The model's ranges with the station's lo/hi replacing them side by side (reference kept for
    the "% of reference" wording)."""
    out = dict(base.ranges)
    for name, o in overrides.items():
        b = out.get(name, MetricRange())
        out[name] = MetricRange(o.lo if o.lo is not None else b.lo, o.hi if o.hi is not None else b.hi, b.reference)
    return GateRanges(out, base.source)


def gate_for(setup: StationSetup, scored: Scored, base: GateRanges | None) -> tuple[GateFailure, ...]:
    """The gate verdict under the station's overrides; the scorer's own verdict without overrides or
    without measured metrics (a scorer that reports none cannot be re-checked)."""
    if not setup.gate or not scored.quality:
        return scored.gate
    return check(scored.quality, merged_ranges(base or GateRanges(), setup.gate))


def recalibrated(setup: StationSetup, prediction: Prediction | None) -> tuple[Prediction | None, float | None]:
    """(decision prediction, raw score when it was recalibrated else None). Only a valid prediction
    of the model version the calibration was fitted for is changed."""
    cal = setup.calibration
    if prediction is None or cal is None or not prediction.valid or prediction.model_version != cal.model_version:
        return prediction, None
    raw = float(prediction.score)  # type: ignore[arg-type]  # valid: a number in [0, 1]
    new = float(apply_temperature([raw], cal.temperature)[0])
    return replace(prediction, score=new), raw


def recalibrated_history(
    app: Pipeline, *, station: str | None, version: str, history: list[LabelledScore]
) -> list[LabelledScore]:
    """The labelled history as the station's live decisions would score it now: recalibrated when
    the station has a calibration fitted for `version` (history of all stations: unchanged)."""
    if station is None:
        return history
    cal = get_setup(app, station=station).calibration
    if cal is None or cal.model_version not in registry.declared_versions(app.settings.models_dir, version):
        return history
    new = apply_temperature([h.score for h in history], cal.temperature)
    return [replace(h, score=float(s)) for h, s in zip(history, new, strict=True)]


# For the engineer screen


def sample_image(app: Pipeline, *, station: str) -> Path | None:
    """The station's newest decodable image (to draw a region of interest on), or None."""
    station = validate_station(station)
    with app.read() as session:
        rel = store.latest_image_path(session, station=station)
    path = app.resolve(rel) if rel else None
    return path if path is not None and path.is_file() else None


def model_gate_ranges(app: Pipeline, *, model_version: str | None = None) -> GateRanges:
    """The accepted ranges stored in the model's artifact (default: production); empty when the
    model has none or its model.json cannot be read (the floors apply then)."""
    version = model_version or registry.current_state(app).production
    try:
        return GateRanges.from_json(read_meta_json(app.settings.models_dir / version).get("domain"))
    except (OSError, ValueError):
        return GateRanges()
