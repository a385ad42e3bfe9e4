"""Deployment changes: shadow, canary, blue-green promote, rollback.

Every change appends a `DeploymentRow` and an event (who, why) in one transaction. The serving
process reads the current row for every inspection (`ingest.inspect`), so a change applies to the
next item, without a restart; models stay loaded in `Pipeline.scorer`'s cache, so switching back is
instant. Decisions (is this candidate worse? which version is "previous"?) are pure functions of
rows and metrics (`registry.previous_production`, `compare.worse_than_production`); the use cases
below store their outcome.

The registry (artifacts, state) and the comparison are re-exported here for the callers that know
this module as the deployment API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inspection import store
from inspection.services.compare import Comparison, Disagreement, compare, worse_than_production
from inspection.services.context import Pipeline
from inspection.services.registry import (
    DeployError,
    DeploymentState,
    ModelDetail,
    ModelInfo,
    current_state,
    list_models,
    model_dir,
    model_info,
    previous_production,
    show_model,
    state_and_previous,
    validate_version,
)
from inspection.services.retrain import score_items

__all__ = [
    "Comparison",
    "DeployError",
    "DeploymentState",
    "Disagreement",
    "ModelDetail",
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
    "validate_version",
    "worse_than_production",
]


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


@dataclass(frozen=True)
class _Change:
    """One deployment change: the new state and its event."""

    action: str  # event kind: deployment.<action>
    production: str
    by: str
    reason: str
    candidate: str | None = None
    mode: str = store.DeploymentMode.NONE
    fraction: float = 0.0
    detail: dict[str, Any] | None = None  # extra event detail


def _write(app: Pipeline, change: _Change) -> DeploymentState:
    now = app.clock()
    c = change
    with app.write() as session:
        old = DeploymentState.from_row(store.current_deployment(session), default_model=app.settings.default_model)
        row = store.add_deployment(
            session,
            row=store.DeploymentRow(at=now, production_version=c.production, candidate_version=c.candidate,
                                    mode=c.mode, canary_fraction=c.fraction, actor=c.by, reason=c.reason),
        )
        new = {"production": c.production, "candidate": c.candidate, "mode": c.mode, "fraction": c.fraction}
        store.add_event(
            session,
            kind=f"deployment.{c.action}",
            at=now,
            actor=c.by,
            detail={"reason": c.reason, "old": old.to_dict(), "new": new, "deployment_id": row.id, **(c.detail or {})},
        )
        return DeploymentState.from_row(row, default_model=app.settings.default_model)


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
    change = _Change(mode.value, state.production, who, why, candidate=v, mode=mode, fraction=fraction)
    return _write(app, change)


@dataclass(frozen=True)
class PromoteResult:
    state: DeploymentState
    previous: str
    forced: bool
    evidence: dict[str, Any]


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
    test_ids = [int(i) for i in (retrain.get("data") or {}).get("test_ids") or []]
    if not test_ids:
        return None
    cand = score_items(app, model=info.version, inspection_ids=test_ids)
    prod = score_items(app, model=production, inspection_ids=test_ids)
    return {
        "source": "recomputed",
        "candidate": cand,
        "production": {"version": production, **prod},
        "items": len(test_ids),
    }


def _promotion_problem(version: str, production: str, evidence: dict[str, Any] | None) -> str | None:
    """Why promoting `version` over `production` needs --force, or None."""
    if evidence is None:
        return f"no held-out comparison of {version} with production {production} (train it with `inspection retrain`)"
    problem = worse_than_production(evidence["candidate"], evidence["production"])
    return f"{version} is worse than production {production}: {problem}" if problem else None


def promote(app: Pipeline, *, version: str, by: str, reason: str = "", force: bool = False) -> PromoteResult:
    """Blue-green: all traffic to `version` at once; the previous production stays loaded.

    Refused when the candidate is worse than production on the held-out labels, or when there is no
    held-out evidence at all, unless `force` with a reason (stored in the event)."""
    who, why = _who(by, reason)
    path = model_dir(app, version)
    v = path.name
    state = current_state(app)
    if v == state.production:
        raise DeployError(f"{v} is already the production model")
    evidence = _evidence(app, model_info(path), state.production)
    problem = _promotion_problem(v, state.production, evidence)
    if problem and not force:
        raise DeployError(f"promotion refused: {problem}; use --force with --reason to override")
    if problem and force and not why:
        raise DeployError("--force needs a --reason: say why a worse or unproven model goes to production")
    _warm(app, v)
    _warm(app, state.production)  # keep the old colour loaded: rollback must be instant
    forced = bool(problem and force)
    detail = {"forced": forced, "problem": problem, "evidence": evidence}
    new = _write(app, _Change("promote", v, who, why, detail=detail))
    return PromoteResult(new, state.production, forced, evidence or {})


def rollback(app: Pipeline, *, by: str, reason: str = "") -> DeploymentState:
    """One action, instant. With a shadow or canary candidate running, it is withdrawn (all traffic
    to production); otherwise production goes back to the previous production version."""
    who, why = _who(by, reason)
    state, prev = state_and_previous(app)
    if state.candidate and state.mode != store.DeploymentMode.NONE:
        return _write(app, _Change("rollback", state.production, who, why, detail={"withdrawn": state.candidate}))
    if prev is None:
        raise DeployError(f"nothing to roll back to: {state.production} is the only production model so far")
    _warm(app, prev)
    return _write(app, _Change("rollback", prev, who, why, detail={"from": state.production}))
