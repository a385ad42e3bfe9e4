"""Ingest's scoring step: which models score an item (production, shadow, canary), each call bounded by
the time-out and failing safe, optionally micro-batched across concurrent requests (services.batcher)."""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from inspection import store
from inspection.core.domain import AutomationLevel, Localisation, Policy, Prediction
from inspection.core.gate import GateFailure
from inspection.core.policy import audit_draw
from inspection.core.scoring import Scored, Scorer
from inspection.services.batcher import MicroBatcher
from inspection.services.context import Pipeline
from inspection.services.stations import StationSetup, gate_for


@runtime_checkable
class PreparingScorer(Protocol):
    """A scorer that splits score() into a per-image step (decode-side work: localise, warp, quality) and
    a batched forward pass (vision.predictor.Predictor). Only such scorers are micro-batched."""

    version: str

    def prepare_image(self, image: np.ndarray, *, localisation: Localisation | None = None) -> Any: ...

    def score_prepared(self, items: Any) -> list[Scored]: ...


# One batcher per loaded scorer (weak: it goes with its Pipeline's models); created on first use.
_BATCHERS: weakref.WeakKeyDictionary[Any, MicroBatcher[Any, Scored]] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def _batcher(app: Pipeline, scorer: Scorer) -> MicroBatcher[Any, Scored] | None:
    """The scorer's micro-batcher, or None when batching is off (size 1) or the scorer cannot batch."""
    size = app.settings.score_batch_size
    if size <= 1 or not isinstance(scorer, PreparingScorer):
        return None
    with _BATCHERS_LOCK:
        batcher = _BATCHERS.get(scorer)
        if batcher is None:
            wait_s = app.settings.score_batch_wait_ms / 1000.0
            batcher = MicroBatcher(scorer.score_prepared, max_items=size, max_wait_s=wait_s,
                                   name=f"batch-{scorer.version}"[:40])
            _BATCHERS[scorer] = batcher
        return batcher


def _score_one(app: Pipeline, scorer: Scorer, image: np.ndarray, loc: Localisation | None) -> Scored:
    """One image through `scorer` within score_timeout_seconds (FutureTimeout past it)."""
    kwargs = {} if loc is None else {"localisation": loc}  # auto: called without it, as every scorer accepts
    timeout = app.settings.score_timeout_seconds
    batcher = _batcher(app, scorer)
    if batcher is None:
        return app._executor.submit(scorer.score, [image], **kwargs).result(timeout=timeout)[0]
    assert isinstance(scorer, PreparingScorer)
    deadline = time.monotonic() + timeout
    # per-image work in the scorer pool (bounded by the same time-out), the forward pass batched
    prepared = app._executor.submit(scorer.prepare_image, image, **kwargs).result(timeout=timeout)
    future: Future[Scored] = batcher.submit(prepared)
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        future.cancel()  # still queued: it is never run
        raise


def run_model(app: Pipeline, name: str, image: np.ndarray, setup: StationSetup) -> Scored:
    """Score one image. Exceptions and time-outs become a Prediction with `error` (→ a person).
    The station's localisation goes to the scorer; its gate overrides re-check the quality metrics."""
    t0 = time.perf_counter()
    version = name
    try:
        scorer = app.scorer(name)
        version = scorer.version
        scored = _score_one(app, scorer, image, setup.localisation_arg)
    except FutureTimeout:
        err = f"model time-out after {app.settings.score_timeout_seconds:g} s"
        return Scored(Prediction(version, None, error=err), None)
    except Exception as exc:  # a broken model must never take the line down: fail safe
        return Scored(Prediction(version, None, error=f"model error: {type(exc).__name__}: {exc}"), None)
    pred = scored.prediction
    if not pred.latency_ms:
        pred = replace(pred, latency_ms=(time.perf_counter() - t0) * 1000.0)
    if not pred.valid:
        # Normalise: a NaN or out-of-range score is stored as "no score" with the reason.
        pred = replace(pred, score=None, error=pred.error or f"invalid score {pred.score!r}")
        return Scored(pred, None)
    return replace(scored, prediction=pred, gate=gate_for(setup, scored, getattr(scorer, "gate_ranges", None)))


@dataclass(frozen=True)
class Scoring:
    decision: Prediction | None
    rows: list[tuple[str, Scored]]  # (role, output) to store
    gate: tuple[GateFailure, ...] = ()  # the domain gate's verdict from the deciding model
    features: tuple[float, ...] = ()  # the deciding model's feature summary (monitoring)


def score_all(
    app: Pipeline,
    *,
    image: np.ndarray | None,
    level: AutomationLevel,
    sha: str,
    deployment: store.DeploymentRow | None,
    setup: StationSetup,
) -> Scoring:
    if image is None or not level.runs_model:
        return Scoring(None, [])
    production = deployment.production_version if deployment else app.settings.default_model
    prod = run_model(app, production, image, setup)
    rows: list[tuple[str, Scored]] = [(store.PredictionRole.PRODUCTION, prod)]
    decision, gate = prod.prediction, prod.gate
    if deployment is not None and deployment.candidate_version:
        mode = deployment.mode
        if mode == store.DeploymentMode.SHADOW:
            rows.append((store.PredictionRole.SHADOW, run_model(app, deployment.candidate_version, image, setup)))
        # Canary items are chosen by image hash (domain-separated from the audit draw): a re-sent
        # image always meets the same model.
        elif mode == store.DeploymentMode.CANARY and _canary(sha, deployment.canary_fraction):
            cand = run_model(app, deployment.candidate_version, image, setup)
            rows.append((store.PredictionRole.CANARY, cand))
            decision, gate = cand.prediction, cand.gate
    features = next((s.features for _, s in rows if s.prediction is decision), ())
    return Scoring(decision, rows, gate, features)


def ramp_audit_policy(policy: Policy, ramp: store.RampRow | None, scoring: Scoring) -> Policy:
    """During a ramp the candidate's automatic decisions are audited at the ramp's (higher) rate, so
    its evidence accrues quickly; the rate is stored with the item and its label weighs 1 / rate."""
    if ramp is None or not any(role == store.PredictionRole.CANARY for role, _ in scoring.rows):
        return policy
    rate = ramp.plan.get("audit_rate") if isinstance(ramp.plan, dict) else None
    if not isinstance(rate, int | float) or not (policy.audit_rate < float(rate) <= 1.0):
        return policy
    return replace(policy, audit_rate=float(rate))


def _canary(sha: str, fraction: float) -> bool:
    return audit_draw("canary:" + sha, seed=0) < fraction
