"""API tokens of camera stations: 256 random bits, shown once, stored as a hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inspection import store
from inspection.services.context import Pipeline
from inspection.services.errors import NotFound
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
        store.add_event(session, kind="token.created", at=now, actor=by, station=station, detail={"prefix": token[:12]})
    return token


def authenticate_token(app: Pipeline, *, token: str | None) -> str | None:
    """The station a token belongs to, or None for a missing, unknown or revoked token."""
    if not token:
        return None
    with app.read() as session:
        row = store.find_token(session, token_hash=_token_hash(token))
        return row.station if row is not None else None


@dataclass(frozen=True)
class TokenInfo:
    """A token as listings show it: never the token itself, only its first characters."""

    id: int
    station: str
    prefix: str
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None
    # The station's latest item received while the token was valid: items do not record which token
    # sent them, so with two live tokens for one station both show the same time.
    last_used: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        iso = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items()}
        return {**iso, "active": self.active}


def list_tokens(app: Pipeline, *, station: str | None = None) -> list[TokenInfo]:
    """Every token (revoked ones too), oldest first, with when it was last used."""
    st = validate_station(station) if station is not None else None
    with app.read() as session:
        return [
            TokenInfo(
                id=int(r.id or 0),
                station=r.station,
                prefix=r.prefix,
                created_by=r.created_by,
                created_at=r.created_at,
                revoked_at=r.revoked_at,
                last_used=store.last_received(session, station=r.station, since=r.created_at, until=r.revoked_at),
            )
            for r in store.list_tokens(session, station=st)
        ]


def revoke_token(app: Pipeline, *, token_id: int, by: str | None = None, reason: str = "") -> TokenInfo:
    """Revoke a token at once (the next request with it is refused); revoking twice is harmless."""
    now = app.clock()
    with app.write() as session:
        row = store.revoke_token(session, token_id=token_id, now=now)
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        if row.revoked_at == now:
            detail = {"prefix": row.prefix, "token_id": token_id, "reason": (reason or "").strip()}
            store.add_event(session, kind="token.revoked", at=now, actor=by, station=row.station, detail=detail)
    return next(t for t in list_tokens(app, station=row.station) if t.id == token_id)
