"""API tokens of camera stations: 256 random bits, shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets

from inspection import store
from inspection.services.context import Pipeline
from inspection.services.validation import validate_station


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
