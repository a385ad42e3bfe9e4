"""What every command group shares: one-line errors, JSON output, option parsing.

Known errors print one line on stderr and exit 2 (a usage or input problem); a refusal with an answer
(no threshold recommendation, promotion refused, not enough labels) exits 1.
"""

from __future__ import annotations

import getpass
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import typer

from inspection.services import errors, validation


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` in red on stderr; the caller raises the returned Exit."""
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: they become null; dates and paths become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(x) for k, x in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(x) for x in value]
    if isinstance(value, datetime | Path):
        return str(value)
    return value


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj))


def echo_json(obj: Any) -> None:
    """One JSON document on one line of stdout."""
    typer.echo(to_json(obj))


def parse_when(value: str | None, option: str) -> datetime | None:
    """ISO date or date-time; a value without a zone is UTC."""
    if value is None or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option} must be an ISO date such as 2025-03-01 or 2025-03-01T08:00, got {value!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


@overload
def station_arg(station: str) -> str: ...


@overload
def station_arg(station: None) -> None: ...


@overload
def station_arg(station: str | None) -> str | None: ...


def station_arg(station: str | None) -> str | None:
    """A validated --station value (None stays None: all stations)."""
    if station is None:
        return None
    try:
        return validation.validate_station(station)
    except errors.InputError as exc:
        raise fail(str(exc)) from None


def default_by(by: str) -> str:
    """--by, or the login name of whoever runs the command (audit trails always name someone)."""
    if by:
        return by
    try:
        return getpass.getuser() or "cli"
    except Exception:  # no login name in containers without a passwd entry
        return "cli"


def pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x * 100:.3g} %"
