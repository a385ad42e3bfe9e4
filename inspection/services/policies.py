"""Versioned station policies: automation level, thresholds, audit rate; who, when, why."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.domain import (
    AutomationLevel,
    Policy,
    PolicyError,
)
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.validation import validate_name, validate_station


def policy_from_row(station: str, row: store.PolicyVersionRow | None) -> Policy:
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
        return policy_from_row(station, store.current_policy(session, station=station))


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
            PolicyRecord(policy_from_row(r.station, r), r.created_by, r.created_at, r.reason, r.old)
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
        by = validate_name(by, "--by (who changes the policy)")
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
            old = policy_from_row(station, store.current_policy(session, station=station))
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




class PolicyOut(BaseModel):
    """A policy as the API and `inspection policy show --json` report it."""

    model_config = ConfigDict(from_attributes=True)

    station: str
    version: int
    level: AutomationLevel
    pass_below: float
    reject_above: float
    audit_rate: float
    audit_seed: int


def policy_to_dict(p: Policy) -> dict[str, Any]:
    """`PolicyOut` as a JSON-ready dict (the level as its value)."""
    return PolicyOut.model_validate(p).model_dump(mode="json")
