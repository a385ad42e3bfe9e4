"""Ingest and decide: validate the bytes, store the image once, score, route, store the decision."""

from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.domain import DecidedBy, Inspection, Label, Policy, Prediction, Region, RouteKind
from inspection.core.policy import route
from inspection.core.scoring import Scored
from inspection.services import monitoring
from inspection.services.context import Pipeline
from inspection.services.errors import IdempotencyConflict, InputError, NotFound, UploadTooLarge
from inspection.services.ingest_scoring import Scoring, ramp_audit_policy, score_all
from inspection.services.policies import policy_from_row
from inspection.services.stations import StationSetup, recalibrated, setup_from_row
from inspection.services.validation import validate_station
from inspection.vision import images
from inspection.vision.formats import NOT_SUPPORTED, refusal, sniff_format

# Ingest


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
    model_error: str | None = None  # the deciding model failed, timed out or gave an invalid score


# Image and heatmap writes (each an fsync, ~1-4 ms here) run in these threads, overlapped with decoding
# and scoring (image) or the transaction's inserts (heatmaps); inspect() joins the image before the
# transaction and the heatmaps before its commit, so a row never names a file that is not on disk and a
# failed write still stores nothing. fsync releases the GIL.
_WRITES = ThreadPoolExecutor(max_workers=8, thread_name_prefix="image-write")
# Work beside a request's decoding and scoring: the station's state read from the database, the frame
# metrics (a few per request in flight; OpenCV and the database driver release the GIL).
_BESIDE = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ingest-beside")


def _store_image_file(app: Pipeline, *, data: bytes, sha: str, ext: str | None) -> str:
    """Content-addressed: images/<aa>/<sha256>.<ext>. The client's file name never becomes a path."""
    rel = Path("images") / sha[:2] / f"{sha}.{ext or 'bin'}"
    key = rel.as_posix()
    if app.images.size(key) != len(data):  # same hash and size: stored already (one object per content)
        app.images.put(key, data)  # durable before any row names it (atomic + fsync, or an acknowledged PUT)
    return key


def _heatmap_path(*, sha: str, version: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version)[:80]
    return (Path("images") / sha[:2] / f"{sha}.{safe}.heatmap.png").as_posix()


def _heatmap_png(scored: Scored) -> bytes | None:
    """The heatmap to store for a valid output (None: none to store)."""
    if scored.heatmap is None or not scored.prediction.valid:
        return None
    return images.heatmap_png(scored.heatmap)


@dataclass(frozen=True)
class _Decoded:
    image: np.ndarray | None
    problem: ImageProblem | None
    metrics: dict[str, float | int | None]


def _decode(app: Pipeline, data: bytes, fmt: str | None) -> _Decoded:
    """The pixels, or the problem; the frame metrics come later (_frame_metrics, beside scoring)."""
    if fmt is None:
        # One sniffer (vision.formats) for every path: GIF is refused here with decode_image's words.
        return _Decoded(None, ImageProblem("unsupported", refusal(data)), {})
    try:
        img = images.decode_image(data, max_pixels=app.settings.max_pixels)
    except images.ImageError as exc:
        return _Decoded(None, ImageProblem("unusable", str(exc) or "cannot decode image"), {})
    return _Decoded(img, None, {})


def _station_state(
    app: Pipeline, station: str
) -> tuple[Policy, store.DeploymentRow | None, StationSetup, store.RampRow | None]:
    """What decides an item at this station now: its policy, the deployment, its setup, an active ramp."""
    with app.read() as session:
        policy = policy_from_row(station, store.current_policy(session, station=station))
        deployment = store.current_deployment(session)
        setup = setup_from_row(station, store.current_station_setup(session, station=station))
        return policy, deployment, setup, store.active_ramp(session)


def _frame_metrics(img: np.ndarray) -> dict[str, float | int | None]:
    m = images.image_metrics(img)
    return {
        "width": int(m.width),
        "height": int(m.height),
        "brightness": float(m.brightness),
        "contrast": float(m.contrast),
        "sharpness": float(m.sharpness),
        "colour_cast": float(m.colour_cast),
    }


def _regions_json(regions: tuple[Region, ...]) -> list[dict[str, Any]]:
    return [asdict(r) for r in regions]


def regions_from_json(data: list[dict[str, Any]] | None) -> tuple[Region, ...]:
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


# The dataclass itself is the schema (the API returns it too): one shape, serialised by pydantic.
_INSPECTION_JSON: TypeAdapter[Inspection] = TypeAdapter(Inspection)


def inspection_to_dict(i: Inspection) -> dict[str, Any]:
    """The JSON an integrator gets, over HTTP and from `inspection ingest --json` (enums as values)."""
    return dict(_INSPECTION_JSON.dump_python(i, mode="json"))


def _problem_of(image: store.ImageRow) -> ImageProblem | None:
    if image.format is None:
        return ImageProblem("unsupported", NOT_SUPPORTED)
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
    regions = regions_from_json(decision.regions) if decision else ()
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
    if not data:
        raise InputError("empty file")
    limit = app.settings.max_upload_bytes
    if len(data) > limit:
        raise UploadTooLarge(f"upload is {len(data)} bytes; the limit is {limit} bytes")
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 255:
        raise InputError("Idempotency-Key is longer than 255 characters")
    t0 = time.perf_counter()  # the monitoring sample's latency: decode + score + route
    sha = hashlib.sha256(data).hexdigest()
    if key is not None:
        replay = _replay(app, station=station, key=key, sha=sha)
        if replay is not None:
            return replay

    now = app.clock()
    fmt = sniff_format(data)
    # The slot is held while the full-resolution pixels live (decode and scoring); Overloaded (503)
    # is raised before anything is stored, so a retry starts clean.
    with app.decodes.slot(_header_pixels(data, app.settings.max_pixels) if fmt is not None else 0):
        # the file is on disk before any row names it: written beside decoding, joined before the rows
        stored: Future[str] = _WRITES.submit(_store_image_file, app, data=data, sha=sha, ext=fmt)
        # the station's policy, setup and deployment are read (~1 ms) on the other core while this one decodes
        reading = _BESIDE.submit(_station_state, app, station)
        try:
            decoded = _decode(app, data, fmt)
            policy, deployment, setup, ramp = reading.result()
            # The frame metrics (~3.5 ms at 1080p: colour conversion and reduction of the whole frame) are
            # taken on the other core while the scorer prepares the same pixels: OpenCV releases the GIL.
            metrics = None if decoded.image is None else _BESIDE.submit(_frame_metrics, decoded.image)
            try:
                scoring = score_all(
                    app, image=decoded.image, level=policy.level, sha=sha, deployment=deployment, setup=setup
                )
            finally:
                measured = {} if metrics is None else metrics.result()
            decoded = _Decoded(None, decoded.problem, measured)  # free the pixels before the slot is given back
        finally:
            wait([reading])  # never leave work running unseen
            rel_path = stored.result()  # a write's error wins over none
    pngs = {role: (s.prediction.model_version, png) for role, s in scoring.rows if (png := _heatmap_png(s))}
    heatmap_paths = {role: _heatmap_path(sha=sha, version=version) for role, (version, _) in pngs.items()}
    heatmap_writes = [_WRITES.submit(app.images.put, heatmap_paths[role], png) for role, (_, png) in pngs.items()]

    error: str | None
    raw_score: float | None = None
    if decoded.problem is not None:
        error = f"undecodable image: {decoded.problem.reason}"
        decision: Prediction | None = Prediction(model_version="none", score=None, error=error)
    else:
        # the decision score is recalibrated for the station; prediction rows keep the raw score
        decision, raw_score = recalibrated(setup, scoring.decision)
        error = decision.error if decision is not None else None
    audit_policy = ramp_audit_policy(policy, ramp, scoring)
    decided = route(decision, audit_policy, image_hash=sha, gate=scoring.gate)
    reason = decided.reason if error is None or error in decided.reason else f"{decided.reason}; {error}"
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
        audit_rate=audit_policy.audit_rate if audit_policy is not policy else None,
    )
    image = store.ImageRow(
        sha256=sha,
        path=rel_path,
        size_bytes=len(data),
        format=fmt,
        first_station=station,
        received_at=now,
        source_name=_clean_source_name(source_name),
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
            _record_sample(
                app, session, row=row, decoded=decoded, scoring=scoring, decision=decision, raw_score=raw_score, t0=t0
            )
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
                        heatmap_path=heatmap_paths.get(role),
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
                    "raw_score": raw_score,  # the model's score when `score` was recalibrated
                    "station_setup": setup.version,
                },
            )
            # The heatmaps' fsyncs ran beside the inserts; joined before the commit, so a committed row
            # never names a file that is not on disk, and a failed write rolls the item back.
            for write in heatmap_writes:
                write.result()
    except IntegrityError:
        # Lost a race with a concurrent request carrying the same Idempotency-Key: answer with its result.
        if key is not None:
            replay = _replay(app, station=station, key=key, sha=sha)
            if replay is not None:
                return replay
        raise
    regions = decision.regions if decision is not None and decision.valid else ()
    model_error = error if decoded.problem is None else None
    return IngestResult(
        _to_inspection(row, sha=sha, regions=regions), created=True, problem=decoded.problem, model_error=model_error
    )


def _record_sample(
    app: Pipeline,
    session: store.Session,
    *,
    row: store.InspectionRow,
    decoded: _Decoded,
    scoring: Scoring,
    decision: Prediction | None,
    raw_score: float | None,
    t0: float,
) -> None:
    """The item's monitoring sample, in the same transaction (one insert; none with monitoring off).
    The sample keeps the model's raw score: the model's reference distribution is of raw scores, and the
    label-free escape estimate applies the station's calibration itself (services.monitor_data)."""
    valid = decision is not None and decision.valid
    monitoring.record_sample(
        app,
        session,
        inspection_id=row.id,
        station=row.station,
        at=row.received_at,
        model_version=row.model_version,
        metrics=decoded.metrics,
        flags={
            "unreadable": decoded.problem is not None,
            "unjudgeable": bool(scoring.gate),
            "to_people": row.status == store.Status.QUEUED,
            "auto_pass": row.route == RouteKind.AUTO_PASS,
            "auto_reject": row.route == RouteKind.AUTO_REJECT,
            "audit": row.audit,
        },
        score=raw_score if raw_score is not None else row.score,
        n_regions=len(decision.regions) if decision is not None and valid else None,
        latency_ms=(time.perf_counter() - t0) * 1000.0,
        features=scoring.features,
    )


def _header_pixels(data: bytes, max_pixels: int) -> int:
    """Pixels the header promises (what decoding will allocate); 0 when the header is unreadable or
    over max_pixels (decoding then refuses it without allocating)."""
    try:
        width, height = images.image_size(data)
    except images.ImageError:
        return 0
    pixels = max(width, 0) * max(height, 0)
    return pixels if pixels <= max_pixels else 0


def _clean_source_name(source_name: str | None) -> str | None:
    """The client's file name for people to read: base name only, no control characters (PostgreSQL
    refuses NUL in text), at most 255 characters. Never used as a path."""
    if not source_name:
        return None
    name = "".join(ch for ch in Path(source_name).name if ch.isprintable())
    return name[:255] or None


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


