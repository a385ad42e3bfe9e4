"""Checks of the values people and machines send (station names, user names, labels)."""

from __future__ import annotations

import re

from inspection.core.domain import (
    Label,
)
from inspection.services.errors import InputError

_STATION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_NAME_RE = re.compile(r"^[^\s\x00-\x1f][^\x00-\x1f]{0,63}$")


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


def validate_name(value: str | None, what: str) -> str:
    name = (value or "").strip()
    if not name or not _NAME_RE.match(name):
        raise InputError(f"{what} is required (1-64 printable characters)")
    return name


def parse_label(label: str | Label) -> Label:
    try:
        return Label(label)
    except ValueError:
        raise InputError(f"label must be one of {[lab.value for lab in Label]}, got {label!r}") from None


