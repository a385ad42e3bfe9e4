"""Deployment changes: shadow, canary, blue-green promote, rollback.

Every change appends a `DeploymentRow` and an event (who, why) in one transaction. The serving
process reads the current row for every inspection (`ingest.inspect`), so a change applies to the
next item, without a restart; models stay loaded in `Pipeline.scorer`'s cache, so switching back is
instant. Decisions (is this candidate worse? which version is "previous"?) are pure functions of
rows and metrics (`registry.rollback_target`, `compare.worse_than_production`); the use cases
below store their outcome. `plan` says what an action would change (from → to, held-out evidence,
whether it needs force) without changing anything: the engineer screen shows it for confirmation,
and `apply_plan` carries it out only if the deployment has not changed since.

Safety rules: promote needs held-out evidence that the candidate is not worse, a canary (which
decides real items) must not be worse on the evidence there is; either is possible only with force
and a reason. Rollback never returns to a version that reached production only by force.

The registry (artifacts, state) and the comparison are re-exported here for the callers that know
this module as the deployment API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from inspection import store
from inspection.services.compare import Comparison, Disagreement, compare, confusion_items, worse_than_production
from inspection.services.context import Pipeline
from inspection.services.registry import (
    DeployError,
    DeploymentState,
    ModelDetail,
    ModelInfo,
    Report,
    current_state,
    list_models,
    model_dir,
    model_info,
    previous_production,
    show_model,
    state_and_target,
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
    "ChangePlan",
    "PromoteResult",
    "apply_plan",
    "canary",
    "compare",
    "confusion_items",
    "current_state",
    "list_models",
    "plan",
    "previous_production",
    "promote",
    "promote_ramped",
    "rollback",
    "shadow",
    "show_model",
    "validate_version",
    "worse_than_production",
]


_FORCE_HINT = "use --force with --reason to override"
_FORCE_HINT_WEB = "tick “Force” and give a reason to override"


def _who(by: str, reason: str) -> tuple[str, str]:
    who = (by or "").strip()
    if not who or len(who) > 64:
        raise DeployError(
            "who makes the change is required (--by NAME, at most 64 characters)",
            web="log in again: the change needs the name of who makes it",
        )
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
            row=store.DeploymentRow(
                at=now,
                production_version=c.production,
                candidate_version=c.candidate,
                mode=c.mode,
                canary_fraction=c.fraction,
                actor=c.by,
                reason=c.reason,
            ),
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


# Evidence: the held-out comparison with production


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


@dataclass(frozen=True)
class _Verdict:
    evidence: dict[str, Any] | None
    worse: str | None  # why the candidate is worse on the held-out labels, or None

    def promotion_problem(self, version: str, production: str) -> str | None:
        """Why promoting needs force: worse, or no held-out comparison at all."""
        if self.evidence is None:
            return (f"no held-out comparison of {version} with production {production} "
                    "(train it with `inspection retrain`)")  # fmt: skip
        return f"{version} is worse than production {production}: {self.worse}" if self.worse else None

    def canary_problem(self, version: str, production: str) -> str | None:
        """Why a canary needs force: it is worse on the evidence there is (a canary is how a model
        without held-out labels earns them, so missing evidence alone does not block it)."""
        return f"{version} is worse than production {production}: {self.worse}" if self.worse else None


def _verdict(app: Pipeline, version: str, production: str) -> _Verdict:
    evidence = _evidence(app, model_info(model_dir(app, version)), production)
    worse = worse_than_production(evidence["candidate"], evidence["production"]) if evidence else None
    return _Verdict(evidence, worse)


def _check_force(action: str, problem: str | None, *, force: bool, why: str) -> bool:
    """Whether the change is forced; refuses a problem without force, and force without a reason."""
    if problem and not force:
        raise DeployError(f"{action} refused: {problem}; {_FORCE_HINT}",
                          web=f"{action} refused: {_web(problem)}; {_FORCE_HINT_WEB}")  # fmt: skip
    if problem and force and not why:
        raise DeployError(
            "--force needs a --reason: say why a worse or unproven model goes to production",
            web="forcing needs a reason: say why a worse or unproven model may decide items",
        )
    return bool(problem and force)


def _web(text: str) -> str:
    return text.replace(" (train it with `inspection retrain`)", " (retrain it to get one)")


# Use cases


def shadow(app: Pipeline, *, version: str, by: str, reason: str = "") -> DeploymentState:
    """The candidate scores every item from now on; its output is stored and compared, never used."""
    return _start_candidate(app, version=version, mode=store.DeploymentMode.SHADOW, fraction=0.0, by=by, reason=reason)


def _check_fraction(fraction: float) -> float:
    if not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
        raise DeployError(
            f"--fraction must be within (0, 1), got {fraction} (use promote for all traffic)",
            web=f"the canary fraction must be between 0 and 1, got {fraction} (Promote sends all traffic)",
        )
    return float(fraction)


def canary(
    app: Pipeline, *, version: str, fraction: float, by: str, reason: str = "", force: bool = False
) -> DeploymentState:
    """A fixed share of items, chosen by image hash, is decided by the candidate from now on.
    Refused when the candidate is worse than production on the held-out labels, unless `force`
    with a reason."""
    return _start_candidate(app, version=version, mode=store.DeploymentMode.CANARY,
                            fraction=_check_fraction(fraction), by=by, reason=reason, force=force)  # fmt: skip


def _start_candidate(
    app: Pipeline,
    *,
    version: str,
    mode: store.DeploymentMode,
    fraction: float,
    by: str,
    reason: str,
    force: bool = False,
) -> DeploymentState:
    who, why = _who(by, reason)
    v = model_dir(app, version).name
    state = current_state(app)
    if v == state.production:
        raise DeployError(f"{v} is the production model; {mode.value} needs a different candidate")
    detail: dict[str, Any] = {}
    if mode is store.DeploymentMode.CANARY:
        verdict = _verdict(app, v, state.production)
        problem = verdict.canary_problem(v, state.production)
        forced = _check_force("canary", problem, force=force, why=why)
        detail = {"forced": forced, "problem": problem, "evidence": verdict.evidence}
    _warm(app, v)
    change = _Change(mode.value, state.production, who, why, candidate=v, mode=mode, fraction=fraction,
                     detail=detail)  # fmt: skip
    return _write(app, change)


@dataclass(frozen=True)
class PromoteResult:
    state: DeploymentState
    previous: str
    forced: bool
    evidence: dict[str, Any]


def promote(app: Pipeline, *, version: str, by: str, reason: str = "", force: bool = False) -> PromoteResult:
    """Blue-green: all traffic to `version` at once; the previous production stays loaded.

    Refused when the candidate is worse than production on the held-out labels, or when there is no
    held-out evidence at all, unless `force` with a reason (stored in the event)."""
    who, why = _who(by, reason)
    v = model_dir(app, version).name
    state = current_state(app)
    if v == state.production:
        raise DeployError(f"{v} is already the production model")
    verdict = _verdict(app, v, state.production)
    problem = verdict.promotion_problem(v, state.production)
    forced = _check_force("promotion", problem, force=force, why=why)
    _warm(app, v)
    _warm(app, state.production)  # keep the old colour loaded: rollback must be instant
    detail = {"forced": forced, "problem": problem, "evidence": verdict.evidence}
    new = _write(app, _Change("promote", v, who, why, detail=detail))
    return PromoteResult(new, state.production, forced, verdict.evidence or {})


def promote_ramped(app: Pipeline, *, version: str, by: str, reason: str, evidence: dict[str, Any]) -> DeploymentState:
    """Promotion at the end of a completed ramp (services.ramp): the ramp's live evidence vouches for
    the candidate (not forced), so a later rollback may return to it."""
    who, why = _who(by, reason)
    v = model_dir(app, version).name
    state = current_state(app)
    _warm(app, v)
    _warm(app, state.production)  # keep the old colour loaded: rollback must be instant
    detail = {"forced": False, "problem": None, "evidence": evidence, "ramp": True}
    return _write(app, _Change("promote", v, who, why, detail=detail))


def _nothing_to_roll_back(state: DeploymentState) -> DeployError:
    return DeployError(
        f"nothing to roll back to: no earlier production model was promoted without force "
        f"(production is {state.production}); promote one explicitly"
    )


def rollback(app: Pipeline, *, by: str, reason: str = "") -> DeploymentState:
    """One action, instant. With a shadow or canary candidate running, it is withdrawn (all traffic
    to production); otherwise production goes back to the last earlier production version promoted
    without force (`registry.rollback_target`), never to one that got there only by force."""
    who, why = _who(by, reason)
    state, target = state_and_target(app)
    if state.candidate and state.mode != store.DeploymentMode.NONE:
        return _write(app, _Change("rollback", state.production, who, why, detail={"withdrawn": state.candidate}))
    if target is None:
        raise _nothing_to_roll_back(state)
    _warm(app, target)
    return _write(app, _Change("rollback", target, who, why, detail={"from": state.production}))


# Plan and confirm


class ChangePlan(Report):
    """What an action would change, for the engineer to confirm; nothing is stored."""

    action: str  # shadow | canary | promote | rollback
    version: str | None  # the model the action is about (rollback: where production goes, if it moves)
    before: DeploymentState
    production: str  # after the change
    candidate: str | None  # after the change
    mode: str  # after the change
    fraction: float
    withdraws: str | None = None  # rollback of a running candidate
    evidence: dict[str, Any] | None = None  # held-out comparison with production
    problem: str | None = None  # why it needs force (worse / unproven); None: it does not
    forced: bool = False  # force was asked for and is needed


def plan(
    app: Pipeline, *, action: str, version: str | None = None, fraction: float = 0.1, force: bool = False,
    reason: str = "",
) -> ChangePlan:  # fmt: skip
    """What `action` would change now, with the same checks the action makes (a refusal raises
    DeployError here already, so the screen never offers to confirm what would be refused)."""
    state, target = state_and_target(app)
    if action == "rollback":
        return _rollback_plan(state, target)
    if action not in ("shadow", "canary", "promote"):
        raise DeployError(f"unknown deployment action {action!r}")
    v = model_dir(app, version or "").name
    if v == state.production:
        raise DeployError(f"{v} is already the production model")
    verdict = _verdict(app, v, state.production)
    why = (reason or "").strip()
    if action == "promote":
        problem = verdict.promotion_problem(v, state.production)
        after: tuple[str, str | None, str, float] = (v, None, store.DeploymentMode.NONE, 0.0)
    else:
        problem = verdict.canary_problem(v, state.production) if action == "canary" else None
        frac = _check_fraction(fraction) if action == "canary" else 0.0
        after = (state.production, v, action, frac)
    forced = _check_force("promotion" if action == "promote" else action, problem, force=force, why=why)
    return ChangePlan(
        action=action, version=v, before=state, production=after[0], candidate=after[1], mode=after[2],
        fraction=after[3], evidence=verdict.evidence, problem=problem, forced=forced,
    )  # fmt: skip


def _rollback_plan(state: DeploymentState, target: str | None) -> ChangePlan:
    running = bool(state.candidate and state.mode != store.DeploymentMode.NONE)
    if not running and target is None:
        raise _nothing_to_roll_back(state)
    production = state.production if running else str(target)
    return ChangePlan(
        action="rollback", version=None if running else target, before=state, production=production,
        candidate=None, mode=store.DeploymentMode.NONE, fraction=0.0,
        withdraws=state.candidate if running else None,
    )  # fmt: skip


def apply_plan(app: Pipeline, change: ChangePlan, *, by: str, reason: str, force: bool = False) -> DeploymentState:
    """Carry out a confirmed plan, only if the deployment is still what the plan was made from
    (someone else's change in between means the summary the engineer confirmed is out of date)."""
    now = current_state(app)
    if now.id != change.before.id:
        who = f" by {now.actor}" if now.actor else ""
        raise DeployError(f"the deployment changed since this summary{who}; review the change again")
    if change.action == "rollback":
        state = rollback(app, by=by, reason=reason)
        if state.production != change.production:  # cannot happen when the check above held
            raise DeployError("rollback went elsewhere than planned")
        return state
    v = change.version or ""
    if change.action == "shadow":
        return shadow(app, version=v, by=by, reason=reason)
    if change.action == "canary":
        return canary(app, version=v, fraction=change.fraction, by=by, reason=reason, force=force)
    return promote(app, version=v, by=by, reason=reason, force=force).state
