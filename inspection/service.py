"""Use cases: ingest and decide, review queue, policies, tokens, reports.

Everything a use case needs comes in through a `Pipeline` built once at the entry point (CLI command,
API app factory, UI); nothing here runs at import time or reads globals. Decisions are made by pure
functions (`policy.route`) and this module stores them: image file first, then the rows that point
to it, each use case in one transaction.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from inspection import store, thresholds
from inspection.config import Settings
from inspection.domain import (
    AuditEstimate,
    AutomationLevel,
    DecidedBy,
    Inspection,
    Label,
    LabelledScore,
    Policy,
    PolicyError,
    Prediction,
    Region,
    Role,
    RouteKind,
)
from inspection.policy import audit_draw, route
from inspection.scoring import Scored, Scorer
from inspection.stats import confusion, estimate_rate
from inspection.store import QueueConflict, QueueOrder

__all__ = [
    "AuditReport",
    "IdempotencyConflict",
    "ImageProblem",
    "IngestResult",
    "InputError",
    "LabelResult",
    "NotFound",
    "Pipeline",
    "PolicyError",
    "QueueConflict",
    "ReviewTask",
    "ScorerFactory",
    "ShadowReport",
    "UploadTooLarge",
]

ScorerFactory = Callable[[str], Scorer]  # model name under models_dir -> a loaded Scorer
Clock = Callable[[], datetime]

_STATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_RE = re.compile(r"^[^\s\x00-\x1f][^\x00-\x1f]{0,63}$")


# ---------------------------------------------------------------------------------------------
# Errors (the API maps them to status codes, the CLI to messages)
# ---------------------------------------------------------------------------------------------


class InputError(ValueError):
    """Bad request data: 422 over HTTP."""


class UploadTooLarge(InputError):
    """Over settings.max_upload_bytes: refused before anything is stored (413)."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused for a different image (409)."""


class NotFound(LookupError):
    """No such inspection (404)."""


# ---------------------------------------------------------------------------------------------
# The context object
# ---------------------------------------------------------------------------------------------


def default_scorer_factory(settings: Settings) -> ScorerFactory:
    """Load real model artifacts from settings.models_dir (torch imported only when first used)."""

    def load(name: str) -> Scorer:
        from inspection.predictor import load_predictor

        return load_predictor(settings.models_dir / name, threads=settings.threads)

    return load


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pipeline:
    """Settings + database engine + model provider + clock: what every use case runs against."""

    settings: Settings
    engine: Engine
    scorer_factory: ScorerFactory
    clock: Clock = _utcnow
    _scorers: dict[str, Scorer] = field(default_factory=dict, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="scorer"), repr=False
    )

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        scorer_factory: ScorerFactory | None = None,
        clock: Clock | None = None,
        upgrade: bool = True,
    ) -> Pipeline:
        """Build the context at an entry point; upgrades the schema to head unless told not to."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = store.make_engine(settings.database_url)
        if upgrade:
            store.upgrade_database(engine)
        return cls(
            settings=settings,
            engine=engine,
            scorer_factory=scorer_factory or default_scorer_factory(settings),
            clock=clock or _utcnow,
        )

    def scorer(self, name: str) -> Scorer:
        """The loaded model `name`, loaded once (models stay loaded, so switching back is instant)."""
        with self._load_lock:
            if name not in self._scorers:
                self._scorers[name] = self.scorer_factory(name)
            return self._scorers[name]

    def resolve(self, relative: str) -> Path:
        """Absolute path of a stored file (rows keep paths relative to data_dir)."""
        return self.settings.data_dir / relative

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.dispose()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[store.Session]:
        with store.write_session(self.engine) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[store.Session]:
        with store.read_session(self.engine) as session:
            yield session


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def validate_station(station: str | None) -> str:
    value = (station or "").strip()
    if not value:
        raise InputError("station is required")
    if not _STATION_RE.match(value):
        raise InputError(
            f"invalid station {value!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def _validate_name(value: str | None, what: str) -> str:
    name = (value or "").strip()
    if not name or not _NAME_RE.match(name):
        raise InputError(f"{what} is required (1-64 printable characters)")
    return name


def _parse_label(label: str | Label) -> Label:
    try:
        return Label(label)
    except ValueError:
        raise InputError(f"label must be one of {[lab.value for lab in Label]}, got {label!r}") from None


# ---------------------------------------------------------------------------------------------
# Ingest
# ---------------------------------------------------------------------------------------------

# Magic numbers of the formats OpenCV can decode. Only used to name the stored file and to tell an
# unsupported type (415) from a recognised but unusable image (422); decoding is images.py's job.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tif"),
    (b"MM\x00*", "tif"),
)


def sniff_format(data: bytes) -> str | None:
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class ImageProblem:
    """Why an accepted upload could not be decoded. kind: unsupported (415) or unusable (422)."""

    kind: Literal["unsupported", "unusable"]
    reason: str


@dataclass(frozen=True)
class IngestResult:
    inspection: Inspection
    created: bool  # False: an Idempotency-Key replay, nothing new was stored
    problem: ImageProblem | None = None


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file + rename so a crash never leaves a half image under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _store_image_file(app: Pipeline, *, data: bytes, sha: str, ext: str | None) -> str:
    """Content-addressed: images/<aa>/<sha256>.<ext>. The client's file name never becomes a path."""
    rel = Path("images") / sha[:2] / f"{sha}.{ext or 'bin'}"
    target = app.resolve(rel.as_posix())
    if not (target.exists() and target.stat().st_size == len(data)):
        _write_atomic(target, data)
    return rel.as_posix()


def _heatmap_file(app: Pipeline, *, sha: str, version: str, heatmap: np.ndarray) -> str | None:
    import cv2

    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2 or hm.size == 0 or not np.all(np.isfinite(hm)):
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version)[:80]
    rel = Path("images") / sha[:2] / f"{sha}.{safe}.heatmap.png"
    ok, png = cv2.imencode(".png", np.round(np.clip(hm, 0.0, 1.0) * 255.0).astype(np.uint8))
    if not ok:
        return None
    _write_atomic(app.resolve(rel.as_posix()), png.tobytes())
    return rel.as_posix()


@dataclass(frozen=True)
class _Decoded:
    image: np.ndarray | None
    problem: ImageProblem | None
    metrics: dict[str, float | int | None]


def _decode(app: Pipeline, data: bytes, fmt: str | None) -> _Decoded:
    from inspection import images

    empty: dict[str, float | int | None] = {}
    if fmt is None:
        return _Decoded(
            None,
            ImageProblem("unsupported", "not a supported image type (JPEG, PNG, BMP, TIFF, WebP)"),
            empty,
        )
    try:
        img = images.decode_image(data, max_pixels=app.settings.max_pixels)
    except images.ImageError as exc:
        return _Decoded(None, ImageProblem("unusable", str(exc) or "cannot decode image"), empty)
    m = images.image_metrics(img)
    metrics: dict[str, float | int | None] = {
        "width": int(m.width),
        "height": int(m.height),
        "brightness": float(m.brightness),
        "contrast": float(m.contrast),
        "sharpness": float(m.sharpness),
    }
    return _Decoded(img, None, metrics)


def _run_model(app: Pipeline, name: str, image: np.ndarray) -> Scored:
    """Score one image. Exceptions and time-outs become a Prediction with `error` (→ a person)."""
    import time

    t0 = time.perf_counter()
    version = name
    try:
        scorer = app.scorer(name)
        version = scorer.version
        future = app._executor.submit(scorer.score, [image])
        scored = future.result(timeout=app.settings.score_timeout_seconds)[0]
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
    return Scored(pred, scored.heatmap)


@dataclass(frozen=True)
class _Scoring:
    decision: Prediction | None
    rows: list[tuple[str, Scored]]  # (role, output) to store


def _score_all(
    app: Pipeline,
    *,
    image: np.ndarray | None,
    level: AutomationLevel,
    sha: str,
    deployment: store.DeploymentRow | None,
) -> _Scoring:
    if image is None or not level.runs_model:
        return _Scoring(None, [])
    production = deployment.production_version if deployment else app.settings.default_model
    prod = _run_model(app, production, image)
    rows: list[tuple[str, Scored]] = [(store.PredictionRole.PRODUCTION, prod)]
    decision = prod.prediction
    if deployment is not None and deployment.candidate_version:
        mode = deployment.mode
        if mode == store.DeploymentMode.SHADOW:
            rows.append((store.PredictionRole.SHADOW, _run_model(app, deployment.candidate_version, image)))
        # Canary items are chosen by image hash (domain-separated from the audit draw): a re-sent
        # image always meets the same model.
        elif mode == store.DeploymentMode.CANARY and _canary(sha, deployment.canary_fraction):
            cand = _run_model(app, deployment.candidate_version, image)
            rows.append((store.PredictionRole.CANARY, cand))
            decision = cand.prediction
    return _Scoring(decision, rows)


def _canary(sha: str, fraction: float) -> bool:
    return audit_draw("canary:" + sha, seed=0) < fraction


def _regions_json(regions: tuple[Region, ...]) -> list[dict[str, Any]]:
    return [asdict(r) for r in regions]


def _regions_from_json(data: list[dict[str, Any]] | None) -> tuple[Region, ...]:
    return tuple(Region(**r) for r in (data or []))


def _to_inspection(row: store.InspectionRow, *, sha: str, regions: tuple[Region, ...]) -> Inspection:
    assert row.id is not None
    return Inspection(
        id=row.id,
        station=row.station,
        route=RouteKind(row.route),
        score=row.score,
        decided_by=DecidedBy(row.decided_by) if row.decided_by else None,
        label=Label(row.final_label) if row.final_label else None,
        reason=row.reason,
        model_version=row.model_version,
        policy_version=row.policy_version,
        image_hash=sha,
        regions=regions,
    )


def policy_to_dict(p: Policy) -> dict[str, Any]:
    """A policy as the API and `inspection policy show --json` report it."""
    return {
        "station": p.station,
        "version": p.version,
        "level": p.level.value,
        "pass_below": p.pass_below,
        "reject_above": p.reject_above,
        "audit_rate": p.audit_rate,
        "audit_seed": p.audit_seed,
    }


def inspection_to_dict(i: Inspection) -> dict[str, Any]:
    """The JSON an integrator gets, over HTTP and from `inspection ingest --json`."""
    return {
        "id": i.id,
        "station": i.station,
        "route": i.route.value,
        "score": i.score,
        "decided_by": i.decided_by.value if i.decided_by else None,
        "label": i.label.value if i.label else None,
        "reason": i.reason,
        "model_version": i.model_version,
        "policy_version": i.policy_version,
        "image_hash": i.image_hash,
        "regions": [asdict(r) for r in i.regions],
    }


def _problem_of(image: store.ImageRow) -> ImageProblem | None:
    if image.format is None:
        return ImageProblem("unsupported", "not a supported image type (JPEG, PNG, BMP, TIFF, WebP)")
    if image.width is None:
        return ImageProblem("unusable", "image could not be decoded")
    return None


def _load_result(session: store.Session, row: store.InspectionRow) -> IngestResult:
    image = store.get_image(session, image_id=row.image_id)
    assert image is not None and row.id is not None
    preds = store.predictions_for(session, inspection_id=row.id)
    decision = next(
        (p for p in preds if p.model_version == row.model_version and p.role != store.PredictionRole.SHADOW),
        None,
    )
    regions = _regions_from_json(decision.regions) if decision else ()
    problem = _problem_of(image)
    if problem is not None and row.error:
        problem = replace(problem, reason=row.error)
    return IngestResult(
        _to_inspection(row, sha=image.sha256, regions=regions), created=False, problem=problem
    )


def inspect(
    app: Pipeline,
    *,
    data: bytes,
    station: str,
    source_name: str | None = None,
    idempotency_key: str | None = None,
    actor: str | None = None,
) -> IngestResult:
    """Ingest one image: validate → hash → store file → decode → score → route → store rows."""
    station = validate_station(station)
    limit = app.settings.max_upload_bytes
    if len(data) > limit:
        raise UploadTooLarge(f"upload is {len(data)} bytes; the limit is {limit} bytes")
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 255:
        raise InputError("Idempotency-Key is longer than 255 characters")
    sha = hashlib.sha256(data).hexdigest()
    if key is not None:
        replay = _replay(app, station=station, key=key, sha=sha)
        if replay is not None:
            return replay

    now = app.clock()
    fmt = sniff_format(data)
    rel_path = _store_image_file(app, data=data, sha=sha, ext=fmt)  # the file exists before any row
    decoded = _decode(app, data, fmt)
    with app.read() as session:
        policy = _policy_from_row(station, store.current_policy(session, station=station))
        deployment = store.current_deployment(session)
    scoring = _score_all(app, image=decoded.image, level=policy.level, sha=sha, deployment=deployment)

    error: str | None
    if decoded.problem is not None:
        error = f"undecodable image: {decoded.problem.reason}"
        decision: Prediction | None = Prediction(model_version="none", score=None, error=error)
    else:
        decision = scoring.decision
        error = decision.error if decision is not None else None
    decided = route(decision, policy, image_hash=sha)
    reason = decided.reason if error is None or error in decided.reason else f"{decided.reason}; {error}"
    heatmaps = {
        role: _heatmap_file(app, sha=sha, version=s.prediction.model_version, heatmap=s.heatmap)
        for role, s in scoring.rows
        if s.heatmap is not None and s.prediction.valid
    }
    score = decision.score if decision is not None and decision.valid else None
    row = store.InspectionRow(
        image_id=0,
        station=station,
        received_at=now,
        policy_version=policy.version,
        level=policy.level.value,
        route=decided.kind.value,
        show_model=decided.show_model,
        audit=decided.audit,
        final_label=decided.label.value if decided.label else None,
        decided_by=DecidedBy.MODEL.value if decided.label else None,
        decided_at=now if decided.label else None,
        model_version=decision.model_version if decision is not None and decoded.problem is None else None,
        score=score,
        reason=reason,
        error=error,
        status=store.Status.QUEUED if decided.needs_person else store.Status.DONE,
        priority=abs(score - 0.5) if score is not None else 0.0,
        idempotency_key=key,
    )
    image = store.ImageRow(
        sha256=sha,
        path=rel_path,
        size_bytes=len(data),
        format=fmt,
        first_station=station,
        received_at=now,
        source_name=(source_name or None) and Path(source_name).name[:255],
        width=_int_or_none(decoded.metrics.get("width")),
        height=_int_or_none(decoded.metrics.get("height")),
        brightness=decoded.metrics.get("brightness"),
        contrast=decoded.metrics.get("contrast"),
        sharpness=decoded.metrics.get("sharpness"),
    )
    try:
        with app.write() as session:
            stored_image = store.get_or_add_image(session, image=image)
            assert stored_image.id is not None
            row.image_id = stored_image.id
            store.add_inspection(session, row=row)
            assert row.id is not None
            for role, s in scoring.rows:
                p = s.prediction
                store.add_prediction(
                    session,
                    row=store.PredictionRow(
                        inspection_id=row.id,
                        model_version=p.model_version,
                        role=role,
                        score=p.score,
                        regions=_regions_json(p.regions),
                        heatmap_path=heatmaps.get(role),
                        latency_ms=float(p.latency_ms),
                        error=p.error,
                        created_at=now,
                    ),
                )
            store.add_event(
                session,
                kind="inspection.created",
                at=now,
                actor=actor,
                station=station,
                inspection_id=row.id,
                detail={
                    "route": row.route,
                    "score": score,
                    "audit": row.audit,
                    "policy_version": policy.version,
                    "model_version": row.model_version,
                    "source_name": image.source_name,
                    "sha256": sha,
                },
            )
    except IntegrityError:
        # Lost a race with a concurrent request carrying the same Idempotency-Key: answer with its result.
        if key is not None:
            replay = _replay(app, station=station, key=key, sha=sha)
            if replay is not None:
                return replay
        raise
    regions = decision.regions if decision is not None and decision.valid else ()
    return IngestResult(_to_inspection(row, sha=sha, regions=regions), created=True, problem=decoded.problem)


def _int_or_none(value: float | int | None) -> int | None:
    return None if value is None else int(value)


def _replay(app: Pipeline, *, station: str, key: str, sha: str) -> IngestResult | None:
    with app.read() as session:
        row = store.find_by_idempotency_key(session, station=station, key=key)
        if row is None:
            return None
        result = _load_result(session, row)
    if result.inspection.image_hash != sha:
        raise IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different image")
    return result


def get_inspection(app: Pipeline, *, inspection_id: int) -> IngestResult:
    with app.read() as session:
        row = store.get_inspection(session, inspection_id=inspection_id)
        if row is None:
            raise NotFound(f"inspection {inspection_id} not found")
        return _load_result(session, row)


# ---------------------------------------------------------------------------------------------
# Review queue
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewTask:
    """What an inspector's screen shows for one claimed item. For blind items (shadow, audit,
    human_only, fail-safe) nothing of the model's call is included: no score, regions or reason."""

    inspection_id: int
    station: str
    image_path: Path
    received_at: datetime
    lease_until: datetime | None
    show_model: bool
    audit: bool
    score: float | None = None
    model_version: str | None = None
    regions: tuple[Region, ...] = ()
    heatmap_path: Path | None = None
    reason: str = ""
    error: str | None = None  # why there is no model output (undecodable …); never the model's call


def _task(app: Pipeline, session: store.Session, row: store.InspectionRow) -> ReviewTask:
    image = store.get_image(session, image_id=row.image_id)
    assert image is not None and row.id is not None
    task = ReviewTask(
        inspection_id=row.id,
        station=row.station,
        image_path=app.resolve(image.path),
        received_at=row.received_at,
        lease_until=row.lease_until,
        show_model=row.show_model,
        audit=row.audit,
        error=row.error if row.error and row.score is None else None,
    )
    if not row.show_model:
        return task
    preds = store.predictions_for(session, inspection_id=row.id)
    decision = next((p for p in preds if p.model_version == row.model_version and p.role != "shadow"), None)
    return replace(
        task,
        score=row.score,
        model_version=row.model_version,
        regions=_regions_from_json(decision.regions) if decision else (),
        heatmap_path=app.resolve(decision.heatmap_path) if decision and decision.heatmap_path else None,
        reason=row.reason,
    )


def claim_next(
    app: Pipeline, *, inspector: str, station: str | None = None, order: QueueOrder = "oldest"
) -> ReviewTask | None:
    """The next item for `inspector` (their current one if they hold a live claim), or None."""
    inspector = _validate_name(inspector, "inspector")
    station = validate_station(station) if station is not None else None
    if order not in ("oldest", "uncertain"):
        raise InputError(f"order must be 'oldest' or 'uncertain', got {order!r}")
    with app.write() as session:
        row = store.claim_next(
            session,
            station=station,
            inspector=inspector,
            now=app.clock(),
            lease_seconds=app.settings.lease_seconds,
            order=order,
        )
        return None if row is None else _task(app, session, row)


@dataclass(frozen=True)
class LabelResult:
    inspection_id: int
    review_id: int
    label: Label
    created: bool  # False when this exact label had already been stored (double submit)


def submit_label(
    app: Pipeline,
    *,
    inspection_id: int,
    inspector: str,
    label: str | Label,
    note: str | None = None,
    seconds_taken: float | None = None,
) -> LabelResult:
    inspector = _validate_name(inspector, "inspector")
    lab = _parse_label(label)
    if seconds_taken is not None and not (math.isfinite(seconds_taken) and seconds_taken >= 0):
        raise InputError("seconds_taken must be a non-negative number")
    try:
        with app.write() as session:
            out = store.store_label(
                session,
                inspection_id=inspection_id,
                inspector=inspector,
                label=lab.value,
                note=(note or None),
                seconds_taken=seconds_taken,
                now=app.clock(),
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except IntegrityError:
        # The partial unique index caught a concurrent second label; report what is stored.
        with app.read() as session:
            existing = store.active_review(session, inspection_id=inspection_id)
        if existing is not None and existing.inspector == inspector and existing.label == lab.value:
            assert existing.id is not None
            return LabelResult(inspection_id, existing.id, lab, created=False)
        raise QueueConflict(f"inspection {inspection_id} was labelled concurrently") from None
    assert out.review.id is not None
    return LabelResult(inspection_id, out.review.id, lab, created=out.created)


def skip(app: Pipeline, *, inspection_id: int, inspector: str, reason: str | None = None) -> None:
    inspector = _validate_name(inspector, "inspector")
    try:
        with app.write() as session:
            store.skip_item(
                session, inspection_id=inspection_id, inspector=inspector, reason=reason, now=app.clock()
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from None


def undo_last(app: Pipeline, *, inspector: str, station: str | None = None) -> ReviewTask:
    """Withdraw the inspector's own last label (within settings.undo_window_seconds); the item is
    handed back to them claimed. Raises QueueConflict when there is nothing to undo."""
    inspector = _validate_name(inspector, "inspector")
    with app.write() as session:
        row = store.undo_last_label(
            session,
            inspector=inspector,
            station=station,
            now=app.clock(),
            window_seconds=app.settings.undo_window_seconds,
            lease_seconds=app.settings.lease_seconds,
        )
        return _task(app, session, row)


def queue_depth(app: Pipeline) -> list[store.QueueDepth]:
    with app.read() as session:
        return store.queue_depth(session)


def peek_queue(app: Pipeline, *, inspector: str, limit: int = 2) -> list[int]:
    """Ids of the items `inspector` would most likely get next (oldest queued, not skipped by them).
    A hint for pre-rendering only: claiming stays with `claim_next`."""
    inspector = _validate_name(inspector, "inspector")
    if not 0 <= limit <= 100:
        raise InputError(f"limit must be between 0 and 100, got {limit}")
    with app.read() as session:
        return store.peek_next_items(session, inspector=inspector, limit=limit)


@dataclass(frozen=True)
class InspectorStats:
    labelled_today: int  # own live labels in the last 12 h (one shift)
    last_hour: int
    queue: int  # items waiting for anyone


def inspector_stats(app: Pipeline, *, inspector: str) -> InspectorStats:
    """Own live labels in the last 12 h and the last hour, and items waiting for anyone."""
    inspector = _validate_name(inspector, "inspector")
    now = app.clock()
    with app.read() as session:
        today = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=12))
        recent = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=1))
        waiting = sum(q.count for q in store.queue_depth(session) if q.status == store.Status.QUEUED)
    return InspectorStats(labelled_today=today, last_hour=recent, queue=waiting)


@dataclass(frozen=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    actor: str | None
    station: str | None
    inspection_id: int | None
    detail: dict[str, Any]


def list_events(
    app: Pipeline, *, station: str | None = None, kind: str | None = None, limit: int = 100
) -> list[EventRecord]:
    """The event log, newest first, optionally for one station and/or one kind."""
    station = validate_station(station) if station is not None else None
    if not 1 <= limit <= 10_000:
        raise InputError(f"limit must be between 1 and 10000, got {limit}")
    with app.read() as session:
        rows = store.list_events(session, kind=kind, station=station, limit=limit)
        return [
            EventRecord(
                id=int(r.id or 0),
                at=r.at,
                kind=r.kind,
                actor=r.actor,
                station=r.station,
                inspection_id=r.inspection_id,
                detail=dict(r.detail or {}),
            )
            for r in rows
        ]


# ---------------------------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------------------------


def _policy_from_row(station: str, row: store.PolicyVersionRow | None) -> Policy:
    if row is None:
        # A station nobody configured is decided by people: the only safe default.
        return Policy(station=station, level=AutomationLevel.HUMAN_ONLY, version=0)
    return Policy(
        station=row.station,
        level=AutomationLevel(row.level),
        pass_below=row.pass_below,
        reject_above=row.reject_above,
        audit_rate=row.audit_rate,
        version=row.version,
        audit_seed=row.audit_seed,
    )


def _policy_values(p: Policy) -> dict[str, Any]:
    return {
        "level": p.level.value,
        "pass_below": p.pass_below,
        "reject_above": p.reject_above,
        "audit_rate": p.audit_rate,
        "audit_seed": p.audit_seed,
        "version": p.version,
    }


def get_policy(app: Pipeline, *, station: str) -> Policy:
    station = validate_station(station)
    with app.read() as session:
        return _policy_from_row(station, store.current_policy(session, station=station))


@dataclass(frozen=True)
class PolicyRecord:
    policy: Policy
    created_by: str
    created_at: datetime
    reason: str
    old: dict[str, Any] | None


def list_policies(app: Pipeline, *, station: str | None = None) -> list[PolicyRecord]:
    """Current policy of every configured station (or the history of one station)."""
    with app.read() as session:
        if station is None:
            rows = store.current_policies(session)
        else:
            rows = store.policy_history(session, station=validate_station(station))
        return [
            PolicyRecord(_policy_from_row(r.station, r), r.created_by, r.created_at, r.reason, r.old)
            for r in rows
        ]


def set_policy(
    app: Pipeline,
    *,
    station: str,
    by: str,
    reason: str,
    level: str | AutomationLevel | None = None,
    pass_below: float | None = None,
    reject_above: float | None = None,
    audit_rate: float | None = None,
    audit_seed: int | None = None,
) -> Policy:
    """Store a new policy version; values not given are kept from the current one. Invalid
    combinations raise PolicyError with a message a person can act on."""
    try:
        station = validate_station(station)
        by = _validate_name(by, "--by (who changes the policy)")
    except InputError as exc:
        raise PolicyError(str(exc)) from None
    if not (reason or "").strip():
        raise PolicyError("a reason is required: say why the policy changes")
    new_level: AutomationLevel | None = None
    if level is not None:
        try:
            new_level = AutomationLevel(level)
        except ValueError:
            raise PolicyError(
                f"unknown automation level {level!r}; "
                f"choose one of {', '.join(lv.value for lv in AutomationLevel)}"
            ) from None
    for name, value in (
        ("pass_below", pass_below),
        ("reject_above", reject_above),
        ("audit_rate", audit_rate),
    ):
        if value is not None and not math.isfinite(value):
            raise PolicyError(f"{name} must be a number within [0, 1], got {value}")
    now = app.clock()
    try:
        with app.write() as session:
            old = _policy_from_row(station, store.current_policy(session, station=station))
            new = replace(
                old,
                level=new_level or old.level,
                pass_below=old.pass_below if pass_below is None else float(pass_below),
                reject_above=old.reject_above if reject_above is None else float(reject_above),
                audit_rate=old.audit_rate if audit_rate is None else float(audit_rate),
                audit_seed=old.audit_seed if audit_seed is None else int(audit_seed),
                version=old.version + 1,
            ).validate()
            store.add_policy_version(
                session,
                row=store.PolicyVersionRow(
                    station=station,
                    version=new.version,
                    level=new.level.value,
                    pass_below=new.pass_below,
                    reject_above=new.reject_above,
                    audit_rate=new.audit_rate,
                    audit_seed=new.audit_seed,
                    created_by=by,
                    created_at=now,
                    reason=reason.strip(),
                    old=_policy_values(old) if old.version > 0 else None,
                ),
            )
            store.add_event(
                session,
                kind="policy.changed",
                at=now,
                actor=by,
                station=station,
                detail={"old": _policy_values(old), "new": _policy_values(new), "reason": reason.strip()},
            )
    except IntegrityError:
        raise PolicyError(
            f"the policy of {station} was changed concurrently; look at it again and retry"
        ) from None
    return new


# ---------------------------------------------------------------------------------------------
# Tokens and users
# ---------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe here (argon2 is for guessable passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(app: Pipeline, *, station: str, by: str | None = None) -> str:
    """A new API token for `station`; the plain token is returned once and only its hash stored."""
    station = validate_station(station)
    token = "insp_" + secrets.token_urlsafe(32)
    now = app.clock()
    with app.write() as session:
        store.add_token(
            session,
            row=store.ApiTokenRow(
                station=station,
                token_hash=_token_hash(token),
                prefix=token[:12],
                created_by=by,
                created_at=now,
            ),
        )
        store.add_event(
            session, kind="token.created", at=now, actor=by, station=station, detail={"prefix": token[:12]}
        )
    return token


def authenticate_token(app: Pipeline, *, token: str | None) -> str | None:
    """The station a token belongs to, or None for a missing, unknown or revoked token."""
    if not token:
        return None
    with app.read() as session:
        row = store.find_token(session, token_hash=_token_hash(token))
        return row.station if row is not None else None


def create_user(app: Pipeline, *, name: str, role: str | Role, password: str, by: str | None = None) -> None:
    from argon2 import PasswordHasher

    name = _validate_name(name, "user name")
    try:
        role_value = Role(role).value
    except ValueError:
        raise InputError(f"role must be one of {[r.value for r in Role]}") from None
    if len(password) < 8:
        raise InputError("password must have at least 8 characters")
    now = app.clock()
    try:
        with app.write() as session:
            store.add_user(
                session,
                row=store.UserRow(
                    name=name, role=role_value, password_hash=PasswordHasher().hash(password), created_at=now
                ),
            )
            store.add_event(
                session, kind="user.created", at=now, actor=by, detail={"name": name, "role": role_value}
            )
    except IntegrityError:
        raise InputError(f"user {name!r} already exists") from None


def verify_user(app: Pipeline, *, name: str, password: str) -> Role | None:
    """The user's role when the password matches an active user, else None."""
    from argon2 import PasswordHasher
    from argon2.exceptions import Argon2Error

    with app.read() as session:
        row = store.get_user(session, name=name)
    if row is None or not row.active:
        return None
    try:
        PasswordHasher().verify(row.password_hash, password)
    except Argon2Error:
        return None
    return Role(row.role)


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _estimate_dict(e: AuditEstimate) -> dict[str, Any]:
    return {"events": e.events, "n": e.trials, "rate": _finite_or_none(e.rate), "low": e.low, "high": e.high}


@dataclass(frozen=True)
class AuditReport:
    station: str | None
    escape: AuditEstimate  # auto-passed items an auditor labelled scratch / audited auto-passed
    false_reject: AuditEstimate  # auto-rejected items labelled ok / audited auto-rejected
    audits: int
    pending: int  # audit reviews queued but not labelled yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "audits": self.audits,
            "pending": self.pending,
            "confidence": 0.95,
            "escape_rate": _estimate_dict(self.escape),
            "false_reject_rate": _estimate_dict(self.false_reject),
        }


def audit_report(app: Pipeline, *, station: str | None = None, since: datetime | None = None) -> AuditReport:
    station = validate_station(station) if station is not None else None
    with app.read() as session:
        rows = store.audit_labels(session, station=station, since=since)
        pending = store.pending_audits(session, station=station)
    passed = [lab for r, lab in rows if r == RouteKind.AUTO_PASS]
    rejected = [lab for r, lab in rows if r == RouteKind.AUTO_REJECT]
    escape = estimate_rate(sum(lab == Label.SCRATCH for lab in passed), len(passed))
    false_reject = estimate_rate(sum(lab == Label.OK for lab in rejected), len(rejected))
    return AuditReport(station, escape, false_reject, audits=len(rows), pending=pending)


@dataclass(frozen=True)
class ShadowReport:
    station: str | None
    model_version: str | None
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    agreement: float | None
    agreement_low: float
    agreement_high: float
    kappa: float | None
    suggestion: thresholds.Suggestion | None  # None with no labels at all
    summary: str

    def to_dict(self) -> dict[str, Any]:
        sug = self.suggestion
        suggestion: dict[str, Any] | None = None
        if sug is not None:
            wi = sug.what_if
            suggestion = {
                "ok": sug.ok,
                "level": "partial" if sug.ok else None,
                "pass_below": sug.pass_below,
                "reject_above": sug.reject_above,
                "labels_needed": sug.labels_needed,
                "automation_rate": _finite_or_none(wi.automation_rate) if wi else None,
                "escape_rate": _finite_or_none(wi.escape_rate) if wi else None,
                "escape_upper": _finite_or_none(wi.escape_upper) if wi else None,
                "false_reject_upper": _finite_or_none(wi.false_reject_upper) if wi else None,
                "reason": sug.reason,
            }
        return {
            "station": self.station,
            "model_version": self.model_version,
            "n": self.n,
            "confusion": {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn},
            "agreement": self.agreement,
            "agreement_interval": [self.agreement_low, self.agreement_high],
            "kappa": self.kappa,
            "suggestion": suggestion,
            "summary": self.summary,
        }


SHADOW_LEVELS = (AutomationLevel.SHADOW.value, AutomationLevel.AI_ASSIST.value)


def shadow_report(
    app: Pipeline,
    *,
    station: str | None = None,
    model_version: str | None = None,
    max_escape: float = 0.002,
) -> ShadowReport:
    """Model (score ≥ 0.5 = scratch) against inspectors on items reviewed under shadow / ai_assist,
    and what thresholds that evidence supports for a target escape rate."""
    station = validate_station(station) if station is not None else None
    if not (0.0 < max_escape < 1.0):
        raise InputError(f"max_escape must be within (0, 1), got {max_escape}")
    with app.read() as session:
        rows = store.scored_reviews(
            session, levels=SHADOW_LEVELS, station=station, model_version=model_version
        )
    model_labels = [Label.SCRATCH if s >= 0.5 else Label.OK for s, _ in rows]
    human = [Label(lab) for _, lab in rows]
    conf = confusion(model_labels, human)
    history = [LabelledScore(score=s, label=Label(lab)) for s, lab in rows]
    suggestion = thresholds.suggest(history, max_escape=max_escape)
    summary = _shadow_summary(suggestion, max_escape=max_escape)
    return ShadowReport(
        station=station,
        model_version=model_version,
        n=conf.n,
        tp=conf.tp,
        fp=conf.fp,
        tn=conf.tn,
        fn=conf.fn,
        agreement=_finite_or_none(conf.agreement),
        agreement_low=conf.agreement_interval[0],
        agreement_high=conf.agreement_interval[1],
        kappa=_finite_or_none(conf.kappa),
        suggestion=suggestion,
        summary=summary,
    )


def _shadow_summary(suggestion: thresholds.Suggestion | None, *, max_escape: float) -> str:
    if suggestion is None:
        return f"no labels under shadow or ai_assist yet (target escape rate {max_escape:.2%})"
    if not suggestion.ok and suggestion.labels_needed > 0:
        return f"not enough labels: {suggestion.labels_needed} more needed ({suggestion.reason})"
    return suggestion.reason
