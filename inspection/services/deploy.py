"""Model registry and deployment: list/show artifacts, shadow, canary, blue-green promote, rollback,
and candidate-vs-production comparison.

A model is a directory under `settings.models_dir`; its directory name is its version. The
deployment state is the latest `DeploymentRow` (none yet: `settings.default_model` serves alone).
Every change appends a row and an event (who, why) in one transaction. The serving process reads
the current row for every inspection (`ingest.inspect`), so a change applies to the next item,
without a restart; models stay loaded in `Pipeline.scorer`'s cache, so switching back is instant.

Decisions (is this candidate worse? which version is "previous"?) are pure functions of rows and
metrics; the use cases below store their outcome.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from inspection import store
from inspection.services.context import Pipeline

__all__ = [
    "Comparison",
    "DeployError",
    "DeploymentState",
    "Disagreement",
    "ModelInfo",
    "PromoteResult",
    "canary",
    "compare",
    "current_state",
    "list_models",
    "previous_production",
    "promote",
    "rollback",
    "shadow",
    "show_model",
    "worse_than_production",
]

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
META_FILE = "model.json"
API = "/api/v1"  # image links in comparisons (same prefix as inspection.api.app)


class DeployError(ValueError):
    """A deployment change that must not happen (unknown model, worse candidate, nothing to roll back)."""


# State


@dataclass(frozen=True)
class DeploymentState:
    production: str
    candidate: str | None = None
    mode: str = store.DeploymentMode.NONE
    canary_fraction: float = 0.0
    at: datetime | None = None
    actor: str | None = None
    reason: str = ""
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "production": self.production,
            "candidate": self.candidate,
            "mode": str(self.mode),
            "canary_fraction": self.canary_fraction,
            "at": self.at.isoformat() if self.at else None,
            "actor": self.actor,
            "reason": self.reason,
            "id": self.id,
        }


def _state(row: store.DeploymentRow | None, default_model: str) -> DeploymentState:
    if row is None:
        return DeploymentState(production=default_model)
    return DeploymentState(
        production=row.production_version,
        candidate=row.candidate_version,
        mode=row.mode,
        canary_fraction=row.canary_fraction,
        at=row.at,
        actor=row.actor,
        reason=row.reason,
        id=row.id,
    )


def current_state(app: Pipeline) -> DeploymentState:
    with app.read() as session:
        return _state(store.current_deployment(session), app.settings.default_model)


def _history(session: store.Session) -> list[store.DeploymentRow]:
    stmt = select(store.DeploymentRow).order_by(col(store.DeploymentRow.at), col(store.DeploymentRow.id))
    return list(session.exec(stmt).all())


def previous_production(history: list[str], *, default_model: str) -> str | None:
    """The production version before the current one, from the production versions of the
    deployment rows in order (the implicit first state is `default_model`); None if there is none."""
    versions = [default_model, *history]
    current = versions[-1]
    for v in reversed(versions[:-1]):
        if v != current:
            return v
    return None


# Registry: artifacts on disk


@dataclass(frozen=True)
class ModelInfo:
    version: str  # directory name
    path: Path
    meta_version: str  # "version" in model.json (what predictions record)
    roles: tuple[str, ...]  # production / shadow / canary / previous
    modified: datetime | None
    data_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # unreadable model.json

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(self.path),
            "meta_version": self.meta_version,
            "roles": list(self.roles),
            "modified": self.modified.isoformat() if self.modified else None,
            "data_hash": self.data_hash,
            "metrics": self.metrics,
            "training": self.training,
            "error": self.error,
        }


def validate_version(version: str) -> str:
    v = (version or "").strip()
    if not _VERSION_RE.match(v) or v in (".", ".."):
        raise DeployError(
            f"invalid model version {version!r}: a directory name of 1-128 letters, digits, '.', '_' or '-'"
        )
    return v


def model_dir(app: Pipeline, version: str) -> Path:
    """The artifact directory of `version`, which must be a direct child of models_dir."""
    v = validate_version(version)
    root = app.settings.models_dir.resolve()
    path = (root / v).resolve()
    if path.parent != root:
        raise DeployError(f"model {v!r} resolves outside {root}")
    if not (path / META_FILE).is_file():
        known = ", ".join(m.name for m in _scan(app.settings.models_dir)) or "none"
        raise DeployError(f"no model {v!r} under {app.settings.models_dir} (known: {known})")
    return path


def _read_json_meta(path: Path) -> tuple[dict[str, Any], str | None]:
    try:
        data = json.loads((path / META_FILE).read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data, None
    except (OSError, ValueError) as exc:
        return {}, f"unreadable {META_FILE}: {exc}"


def _info(path: Path, roles: tuple[str, ...]) -> ModelInfo:
    data, error = _read_json_meta(path)
    try:
        modified: datetime | None = datetime.fromtimestamp((path / META_FILE).stat().st_mtime).astimezone()
    except OSError:
        modified = None
    return ModelInfo(
        version=path.name,
        path=path,
        meta_version=str(data.get("version", path.name)),
        roles=roles,
        modified=modified,
        data_hash=str(data.get("data_hash", "")),
        metrics=dict(data.get("metrics", {}) or {}),
        training=dict(data.get("training", {}) or {}),
        error=error,
    )


def _scan(models_dir: Path) -> list[Path]:
    if not models_dir.is_dir():
        return []
    return sorted(
        p
        for p in models_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).is_file()
    )


def _roles(state: DeploymentState, previous: str | None, version: str) -> tuple[str, ...]:
    roles = []
    if version == state.production:
        roles.append("production")
    if version == state.candidate and state.mode != store.DeploymentMode.NONE:
        roles.append(str(state.mode))
    if previous is not None and version == previous:
        roles.append("previous")
    return tuple(roles)


def _state_and_previous(app: Pipeline) -> tuple[DeploymentState, str | None]:
    with app.read() as session:
        rows = _history(session)
    state = _state(rows[-1] if rows else None, app.settings.default_model)
    prev = previous_production([r.production_version for r in rows], default_model=app.settings.default_model)
    return state, prev


def list_models(app: Pipeline) -> list[ModelInfo]:
    """Every artifact directory under models_dir, with its deployment roles."""
    state, prev = _state_and_previous(app)
    return [_info(p, _roles(state, prev, p.name)) for p in _scan(app.settings.models_dir)]


@dataclass(frozen=True)
class ModelDetail:
    info: ModelInfo
    state: DeploymentState
    history: list[DeploymentState]  # deployment rows that name this version

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            "deployment": self.state.to_dict(),
            "history": [h.to_dict() for h in self.history],
        }


def show_model(app: Pipeline, *, version: str) -> ModelDetail:
    path = model_dir(app, version)
    with app.read() as session:
        rows = _history(session)
    state = _state(rows[-1] if rows else None, app.settings.default_model)
    prev = previous_production([r.production_version for r in rows], default_model=app.settings.default_model)
    mine = [
        _state(r, app.settings.default_model)
        for r in rows
        if path.name in (r.production_version, r.candidate_version)
    ]
    return ModelDetail(_info(path, _roles(state, prev, path.name)), state, mine)


# Changes


def _who(by: str, reason: str) -> tuple[str, str]:
    who = (by or "").strip()
    if not who or len(who) > 64:
        raise DeployError("who makes the change is required (--by NAME, at most 64 characters)")
    return who, (reason or "").strip()


def _warm(app: Pipeline, version: str) -> None:
    """Load the model before any traffic can reach it (a broken artifact is never deployed); in the
    serving process this is the blue-green warm-up, and the model then stays loaded."""
    try:
        app.scorer(version)
    except Exception as exc:
        raise DeployError(f"model {version!r} cannot be loaded: {type(exc).__name__}: {exc}") from None


def _write(
    app: Pipeline,
    *,
    action: str,
    production: str,
    candidate: str | None,
    mode: str,
    fraction: float,
    by: str,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> DeploymentState:
    now = app.clock()
    with app.write() as session:
        old = _state(store.current_deployment(session), app.settings.default_model)
        row = store.add_deployment(
            session,
            row=store.DeploymentRow(
                at=now,
                production_version=production,
                candidate_version=candidate,
                mode=mode,
                canary_fraction=fraction,
                actor=by,
                reason=reason,
            ),
        )
        store.add_event(
            session,
            kind=f"deployment.{action}",
            at=now,
            actor=by,
            detail={
                "reason": reason,
                "old": old.to_dict(),
                "new": {"production": production, "candidate": candidate, "mode": mode, "fraction": fraction},
                "deployment_id": row.id,
                **(detail or {}),
            },
        )
        return _state(row, app.settings.default_model)


def shadow(app: Pipeline, *, version: str, by: str, reason: str = "") -> DeploymentState:
    """The candidate scores every item from now on; its output is stored and compared, never used."""
    return _start_candidate(app, version=version, mode=store.DeploymentMode.SHADOW, fraction=0.0, by=by,
                            reason=reason)


def canary(app: Pipeline, *, version: str, fraction: float, by: str, reason: str = "") -> DeploymentState:
    """A fixed share of items, chosen by image hash, is decided by the candidate from now on."""
    if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
        raise DeployError(f"--fraction must be within (0, 1), got {fraction} (use promote for all traffic)")
    return _start_candidate(app, version=version, mode=store.DeploymentMode.CANARY, fraction=float(fraction),
                            by=by, reason=reason)


def _start_candidate(
    app: Pipeline, *, version: str, mode: store.DeploymentMode, fraction: float, by: str, reason: str
) -> DeploymentState:
    who, why = _who(by, reason)
    v = model_dir(app, version).name
    state = current_state(app)
    if v == state.production:
        raise DeployError(f"{v} is the production model; {mode.value} needs a different candidate")
    _warm(app, v)
    return _write(
        app,
        action=mode.value,
        production=state.production,
        candidate=v,
        mode=mode,
        fraction=fraction,
        by=who,
        reason=why,
    )


@dataclass(frozen=True)
class PromoteResult:
    state: DeploymentState
    previous: str
    forced: bool
    evidence: dict[str, Any]


def _metric(summary: dict[str, Any], key: str) -> float | None:
    v = summary.get(key)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def worse_than_production(candidate: dict[str, Any], production: dict[str, Any]) -> str | None:
    """Why the candidate is worse on the same held-out items, or None when it is not.

    Ranking first (AUROC: thresholds can move, ranking cannot), then accuracy at 0.5 when AUROC
    is undefined (one class held out); a tie is not worse.
    """
    for key in ("auroc", "accuracy"):
        c, p = _metric(candidate, key), _metric(production, key)
        if c is not None and p is not None:
            if c < p:
                return f"held-out {key} {c:.4f} < production {p:.4f}"
            return None
    return None


def _evidence(app: Pipeline, info: ModelInfo, production: str) -> dict[str, Any] | None:
    """The held-out comparison with `production`: stored by retrain when production is the same,
    otherwise recomputed now on the candidate's stored held-out items."""
    retrain = info.metrics.get("retrain")
    if not isinstance(retrain, dict):
        return None
    held = retrain.get("heldout") or {}
    stored_prod = held.get("production") or {}
    if stored_prod.get("version") == production and isinstance(held.get("candidate"), dict):
        return {
            "source": "stored",
            "candidate": held["candidate"],
            "production": stored_prod,
            "items": held.get("n"),
        }
    test_ids = (retrain.get("data") or {}).get("test_ids") or []
    if not test_ids:
        return None
    from inspection.services.retrain import score_items

    cand = score_items(app, model=info.version, inspection_ids=[int(i) for i in test_ids])
    prod = score_items(app, model=production, inspection_ids=[int(i) for i in test_ids])
    return {
        "source": "recomputed",
        "candidate": cand,
        "production": {"version": production, **prod},
        "items": len(test_ids),
    }


def promote(app: Pipeline, *, version: str, by: str, reason: str = "", force: bool = False) -> PromoteResult:
    """Blue-green: all traffic to `version` at once; the previous production stays loaded.

    Refused when the candidate is worse than production on the held-out labels, or when there is no
    held-out evidence at all, unless `force` with a reason (stored in the event)."""
    who, why = _who(by, reason)
    path = model_dir(app, version)
    v = path.name
    state, _prev = _state_and_previous(app)
    if v == state.production:
        raise DeployError(f"{v} is already the production model")
    info = _info(path, ())
    evidence = _evidence(app, info, state.production)
    problem: str | None
    if evidence is None:
        problem = (
            f"no held-out comparison of {v} with production {state.production} "
            "(train it with `inspection retrain`)"
        )
    else:
        problem = worse_than_production(evidence["candidate"], evidence["production"])
        if problem:
            problem = f"{v} is worse than production {state.production}: {problem}"
    if problem and not force:
        raise DeployError(f"promotion refused: {problem}; use --force with --reason to override")
    if problem and force and not why:
        raise DeployError("--force needs a --reason: say why a worse or unproven model goes to production")
    _warm(app, v)
    _warm(app, state.production)  # keep the old colour loaded: rollback must be instant
    detail = {"forced": bool(problem and force), "problem": problem, "evidence": evidence}
    new = _write(
        app,
        action="promote",
        production=v,
        candidate=None,
        mode=store.DeploymentMode.NONE,
        fraction=0.0,
        by=who,
        reason=why,
        detail=detail,
    )
    return PromoteResult(new, state.production, bool(problem and force), evidence or {})


def rollback(app: Pipeline, *, by: str, reason: str = "") -> DeploymentState:
    """One action, instant. With a shadow or canary candidate running, it is withdrawn (all traffic
    to production); otherwise production goes back to the previous production version."""
    who, why = _who(by, reason)
    state, prev = _state_and_previous(app)
    if state.candidate and state.mode != store.DeploymentMode.NONE:
        return _write(
            app,
            action="rollback",
            production=state.production,
            candidate=None,
            mode=store.DeploymentMode.NONE,
            fraction=0.0,
            by=who,
            reason=why,
            detail={"withdrawn": state.candidate},
        )
    if prev is None:
        raise DeployError(f"nothing to roll back to: {state.production} is the only production model so far")
    _warm(app, prev)
    return _write(
        app,
        action="rollback",
        production=prev,
        candidate=None,
        mode=store.DeploymentMode.NONE,
        fraction=0.0,
        by=who,
        reason=why,
        detail={"from": state.production},
    )


# Compare


@dataclass(frozen=True)
class Disagreement:
    inspection_id: int
    station: str
    candidate_score: float
    production_score: float
    production_version: str
    human_label: str | None
    image_path: str
    link: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class Comparison:
    version: str
    n: int  # items both scored
    agreement: float | None  # share with the same call at 0.5
    agreement_interval: tuple[float, float]
    kappa: float | None
    correlation: float | None  # Pearson, of the scores
    candidate_accuracy: float | None  # on the items with a human label
    production_accuracy: float | None
    n_labelled: int
    disagreements_total: int
    disagreements: list[Disagreement]

    def to_dict(self) -> dict[str, Any]:
        d = dict(vars(self))
        d["agreement_interval"] = list(self.agreement_interval)
        d["disagreements"] = [x.to_dict() for x in self.disagreements]
        return d


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def compare(app: Pipeline, *, version: str, limit: int = 50, station: str | None = None) -> Comparison:
    """Candidate `version` against production on the items both scored (shadow or canary)."""
    from inspection.core.stats import confusion

    path = model_dir(app, version)
    meta_version = _info(path, ()).meta_version
    cand: Any = aliased(store.PredictionRow)
    prod: Any = aliased(store.PredictionRow)
    ins: Any = store.InspectionRow
    img: Any = store.ImageRow
    rev: Any = store.ReviewRow
    live_label = (
        sa.select(rev.label)
        .where(rev.inspection_id == cand.inspection_id, rev.undone_at.is_(None))
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        sa.select(
            cand.inspection_id,
            cand.score,
            prod.score,
            prod.model_version,
            ins.station,
            img.path,
            live_label,
        )
        .join(
            prod,
            sa.and_(prod.inspection_id == cand.inspection_id, prod.role == store.PredictionRole.PRODUCTION),
        )
        .join(ins, ins.id == cand.inspection_id)
        .join(img, img.id == ins.image_id)
        .where(
            cand.model_version.in_({meta_version, path.name}),
            cand.role.in_([store.PredictionRole.SHADOW, store.PredictionRole.CANARY]),
            cand.score.is_not(None),
            prod.score.is_not(None),
        )
        .order_by(cand.inspection_id)
    )
    if station is not None:
        stmt = stmt.where(ins.station == station)
    with app.read() as session:
        rows = session.execute(stmt).all()
    c = np.array([float(r[1]) for r in rows], dtype=np.float64)
    p = np.array([float(r[2]) for r in rows], dtype=np.float64)
    conf = confusion(list(c >= 0.5), list(p >= 0.5))
    corr: float | None = None
    if len(rows) >= 2 and np.std(c) > 0 and np.std(p) > 0:
        corr = _finite(float(np.corrcoef(c, p)[0, 1]))
    labelled = [(ci, pi, r[6]) for ci, pi, r in zip(c, p, rows, strict=True) if r[6] in ("scratch", "ok")]
    cand_acc = prod_acc = None
    if labelled:
        cand_acc = float(np.mean([(ci >= 0.5) == (lab == "scratch") for ci, _, lab in labelled]))
        prod_acc = float(np.mean([(pi >= 0.5) == (lab == "scratch") for _, pi, lab in labelled]))
    dis = [
        Disagreement(
            inspection_id=int(r[0]),
            station=str(r[4]),
            candidate_score=float(r[1]),
            production_score=float(r[2]),
            production_version=str(r[3]),
            human_label=r[6],
            image_path=str(app.resolve(r[5])),
            link=f"{API}/inspections/{int(r[0])}/image",
        )
        for r in rows
        if (float(r[1]) >= 0.5) != (float(r[2]) >= 0.5)
    ]
    dis.sort(key=lambda d: (-abs(d.candidate_score - d.production_score), d.inspection_id))
    return Comparison(
        version=path.name,
        n=len(rows),
        agreement=_finite(conf.agreement),
        agreement_interval=conf.agreement_interval,
        kappa=_finite(conf.kappa),
        correlation=corr,
        candidate_accuracy=cand_acc,
        production_accuracy=prod_acc,
        n_labelled=len(labelled),
        disagreements_total=len(dis),
        disagreements=dis[: max(0, limit)],
    )
