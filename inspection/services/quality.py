"""Quality control of the inspectors: gold items planted blind, double labelling with adjudication,
per-inspector accuracy with intervals, agreement (Cohen's kappa) and drift across the shift.

- Gold: an engineer marks a stored item as gold with its known label. When an inspector asks for the
  next item and real work is waiting, a share `gold_rate` of the time (station value, else the
  setting) a copy of a gold item of the same station they were never given is planted instead: same
  screen, no model output (like any blind item). Their answer is a review of kind gold, never a label
  of record, so it counts nowhere but in their accuracy.
- Double labels: a share `double_rate` of items (chosen by a hash of the item id, so a relabel after an
  undo decides the same) is labelled by two inspectors independently. Agreement finishes the item with
  the first label; a disagreement waits for an engineer, whose adjudication is the label of record.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from inspection import store
from inspection.core import agreement
from inspection.core.domain import AuditEstimate, Label
from inspection.services.context import Pipeline
from inspection.services.errors import InputError, NotFound, QueueConflict
from inspection.services.validation import parse_label, validate_name, validate_station

__all__ = [
    "AdjudicationItem",
    "GoldItem",
    "InspectorQuality",
    "QcRates",
    "QcReport",
    "adjudicate",
    "adjudication_queue",
    "get_rates",
    "list_gold",
    "mark_gold",
    "plant_for",
    "qc_report",
    "set_rates",
    "unmark_gold",
    "wants_double",
]

# Plants must not be predictable from the outside: the system's randomness, not a seeded generator.
_RNG = random.SystemRandom()


# Rates


@dataclass(frozen=True)
class QcRates:
    station: str
    gold_rate: float
    double_rate: float
    own: bool  # the station has its own rates (else the server settings apply)


def _rates(app: Pipeline, session: store.Session, station: str) -> QcRates:
    row = store.get_qc_setting(session, station=station)
    gold = row.gold_rate if row is not None and row.gold_rate is not None else app.settings.qc_gold_rate
    double = row.double_rate if row is not None and row.double_rate is not None else app.settings.qc_double_rate
    return QcRates(station, gold, double, own=row is not None)


def get_rates(app: Pipeline, *, station: str) -> QcRates:
    station = validate_station(station)
    with app.read() as session:
        return _rates(app, session, station)


def _rate(value: float | None, what: str) -> float | None:
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InputError(f"{what} must be between 0 and 1, got {value}")
    return value


def set_rates(
    app: Pipeline, *, station: str, gold_rate: float | None, double_rate: float | None, by: str, reason: str
) -> QcRates:
    """A station's own rates (None: the server setting); who and why go into the event log."""
    station, by = validate_station(station), validate_name(by, "by")
    if not reason.strip():
        raise InputError("give a reason")
    gold, double = _rate(gold_rate, "gold rate"), _rate(double_rate, "double-label rate")
    with app.write() as session:
        store.set_qc_setting(session, station=station, gold_rate=gold, double_rate=double, by=by,
                             reason=reason.strip(), now=app.clock())  # fmt: skip
        return _rates(app, session, station)


def wants_double(app: Pipeline, session: store.Session, *, station: str, inspection_id: int) -> bool:
    """Whether this item is one of the share labelled twice (a hash of its id against the rate)."""
    rate = _rates(app, session, station).double_rate
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"qc-double:{inspection_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


# Gold items


@dataclass(frozen=True)
class GoldItem:
    inspection_id: int
    station: str
    label: str
    created_by: str
    created_at: datetime
    reason: str


def _gold(row: store.GoldItemRow, station: str) -> GoldItem:
    return GoldItem(row.inspection_id, station, row.label, row.created_by, row.created_at, row.reason)


def mark_gold(app: Pipeline, *, inspection_id: int, by: str, reason: str, label: str | None = None) -> GoldItem:
    """Mark a stored item gold. Without `label` its final human label is the known answer."""
    by = validate_name(by, "by")
    if not reason.strip():
        raise InputError("give a reason (why this item's label is certain)")
    with app.write() as session:
        known = parse_label(label).value if label else _final_label(session, inspection_id)
        try:
            row = store.add_gold(session, inspection_id=inspection_id, label=known, by=by, reason=reason.strip(),
                                 now=app.clock())  # fmt: skip
        except LookupError as exc:
            raise NotFound(str(exc)) from None
        except store.AlreadyExists as exc:
            raise InputError(str(exc)) from None
        item = store.get_inspection(session, inspection_id=inspection_id)
        assert item is not None
        return _gold(row, item.station)


def _final_label(session: store.Session, inspection_id: int) -> str:
    final = store.active_review(session, inspection_id=inspection_id)
    if final is None or final.label not in (Label.SCRATCH, Label.OK):
        raise InputError(f"inspection {inspection_id} has no final human label: give the gold label")
    return final.label


def unmark_gold(app: Pipeline, *, inspection_id: int, by: str) -> None:
    by = validate_name(by, "by")
    with app.write() as session:
        if store.remove_gold(session, inspection_id=inspection_id, by=by, now=app.clock()) is None:
            raise NotFound(f"inspection {inspection_id} is not a gold item")


def list_gold(app: Pipeline) -> list[GoldItem]:
    with app.read() as session:
        return [_gold(row, station) for row, station in store.list_gold(session)]


def plant_for(
    app: Pipeline, session: store.Session, *, inspector: str, station: str | None, now: datetime
) -> store.InspectionRow | None:
    """Inside the claim's transaction: a planted gold copy for `inspector`, or None (no plant this time).

    Only when real work is waiting for them (an empty queue that hands out an item would give the plant
    away) and only a gold item of the station that work comes from.
    """
    if store.holds_claim(session, inspector=inspector, station=station, now=now):
        return None
    waiting = store.peek_next_items(session, inspector=inspector, station=station, limit=1)
    nxt = store.get_inspection(session, inspection_id=waiting[0]) if waiting else None
    if nxt is None:
        return None
    rate = _rates(app, session, nxt.station).gold_rate
    if rate <= 0 or _RNG.random() >= rate:
        return None
    candidates = store.gold_candidates(session, inspector=inspector, station=nxt.station)
    if not candidates:
        return None
    policy = store.current_policy(session, station=nxt.station)
    return store.plant_gold(
        session, gold=_RNG.choice(candidates), inspector=inspector, now=now, lease_seconds=app.settings.lease_seconds,
        level=policy.level if policy else nxt.level, policy_version=policy.version if policy else nxt.policy_version,
    )  # fmt: skip


# Adjudication


@dataclass(frozen=True)
class AdjudicationItem:
    inspection_id: int
    station: str
    image_path: Path
    labels: tuple[tuple[str, str], ...]  # (inspector, label), first label first
    at: datetime  # of the second label


def adjudication_queue(app: Pipeline, *, station: str | None = None) -> list[AdjudicationItem]:
    """Items two inspectors labelled differently, waiting for an engineer (oldest first)."""
    station = validate_station(station) if station is not None else None
    out = []
    with app.read() as session:
        for d in store.double_labels(session, station=station, status=store.Status.ADJUDICATION):
            row = store.get_inspection(session, inspection_id=d.inspection_id)
            image = store.get_image(session, image_id=row.image_id) if row else None
            assert image is not None  # foreign keys
            labels = ((d.first, d.first_label), (d.second, d.second_label))
            out.append(AdjudicationItem(d.inspection_id, d.station, app.resolve(image.path), labels, d.at))
    return out


def adjudicate(app: Pipeline, *, inspection_id: int, label: str | Label, by: str, reason: str = "") -> Label:
    """The engineer's label of a disagreement: the item's label of record from now on."""
    by, lab = validate_name(by, "by"), parse_label(label)
    try:
        with app.write() as session:
            store.adjudicate(session, inspection_id=inspection_id, engineer=by, label=lab.value,
                             reason=reason.strip(), now=app.clock())  # fmt: skip
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise QueueConflict(str(exc)) from None
    return lab


# The report


@dataclass(frozen=True)
class Miss:
    gold_item: int
    planted_as: int
    station: str
    answer: str
    truth: str
    at: datetime
    image_path: str  # relative to the data directory


@dataclass(frozen=True)
class InspectorQuality:
    inspector: str
    labels: int  # every live label from the queue (gold answers and second labels included)
    gold: AuditEstimate  # accuracy on gold: events = correct answers, trials = gold answered
    misses: tuple[Miss, ...]
    shift: agreement.ShiftDrift


@dataclass(frozen=True)
class PairOut:
    a: str
    b: str
    n: int
    agreed: int
    kappa: float | None


@dataclass(frozen=True)
class QcReport:
    station: str | None
    since: datetime | None
    generated_at: datetime
    inspectors: tuple[InspectorQuality, ...]
    pairs: tuple[PairOut, ...]
    overall: PairOut  # every double-labelled item: first label against second
    double_items: int
    pending_adjudication: int
    gold_items: int
    rates: dict[str, float] = field(default_factory=dict)  # the server settings

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _pair(a: str, b: str, k: agreement.Kappa) -> PairOut:
    return PairOut(a, b, k.n, k.agreed, _finite(k.kappa))


def qc_report(app: Pipeline, *, station: str | None = None, since: datetime | None = None) -> QcReport:
    """Per inspector: accuracy on gold with its 95 % interval and misses, time per item and accuracy in
    the first vs the last hour of their days; kappa per pair and overall; what waits for adjudication."""
    station = validate_station(station) if station is not None else None
    with app.read() as session:
        answers = store.gold_answers(session, station=station, since=since)
        labels = store.shift_labels(session, station=station, since=since)
        doubles = store.double_labels(session, station=station, since=since)
        n_gold = len(store.list_gold(session))
    correct = {a.copy_id: a.correct for a in answers}
    by_inspector: dict[str, list[agreement.ShiftSample]] = defaultdict(list)
    for lab in labels:
        by_inspector[lab.inspector].append(agreement.ShiftSample(lab.at, lab.seconds, correct.get(lab.copy_id)))
    inspectors = []
    for name in sorted(by_inspector):
        own = [a for a in answers if a.inspector == name]
        misses = tuple(
            Miss(a.gold_item, a.copy_id, a.station, a.answer, a.truth, a.at, a.image_path) for a in own if not a.correct
        )
        acc = agreement.accuracy(sum(a.correct for a in own), len(own))
        shift = agreement.shift_drift(by_inspector[name])
        inspectors.append(InspectorQuality(name, len(by_inspector[name]), acc, misses, shift))
    pairs, overall = agreement.pair_agreement(
        agreement.DoubleLabel(d.inspection_id, d.first, d.first_label, d.second, d.second_label) for d in doubles
    )
    return QcReport(
        station=station, since=since, generated_at=app.clock(), inspectors=tuple(inspectors),
        pairs=tuple(_pair(p.a, p.b, p.kappa) for p in pairs), overall=_pair("first", "second", overall),
        double_items=len(doubles), pending_adjudication=sum(d.status == store.Status.ADJUDICATION for d in doubles),
        gold_items=n_gold, rates={"gold_rate": app.settings.qc_gold_rate, "double_rate": app.settings.qc_double_rate},
    )  # fmt: skip
