"""Users, passwords, browser sessions and role checks (shared by the web UI and the HTTP API).

Passwords are hashed with argon2 (`create_user` / `verify_user`); an unknown or inactive name is
checked against a dummy hash, so that the answer takes as long as for a real user. A browser
session is server-side (`Sessions`): the cookie `inspection_session` carries a random token only.
The role is read from the database on every check, so a deactivated user or changed role takes
effect at once. Every password check from outside goes through `attempt_login`, which applies the
shared throttle (`inspection.services.throttle`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from inspection import store
from inspection.core.domain import Role
from inspection.services import throttle
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.validation import validate_name

COOKIE_NAME = "inspection_session"
SESSION_SECONDS = 12 * 3600  # one shift and a bit
_TOUCH_EVERY = timedelta(minutes=1)  # how stale a session's "last seen" may get (idle expiry)


class Permission(StrEnum):
    REVIEW = "review"  # label items from the queue
    ENGINEER = "engineer"  # policies, reports, models, export
    ADMIN = "admin"  # user management


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.INSPECTOR: frozenset({Permission.REVIEW}),
    Role.ENGINEER: frozenset({Permission.REVIEW, Permission.ENGINEER}),
    Role.ADMIN: frozenset({Permission.REVIEW, Permission.ENGINEER, Permission.ADMIN}),
}


class AuthError(PermissionError):
    """Not logged in (401) or not allowed (403); the message is safe to show."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    def can(self, permission: Permission) -> bool:
        return permission in _GRANTS[self.role]

    @property
    def is_engineer(self) -> bool:
        return self.can(Permission.ENGINEER)


def require(user: User | None, permission: Permission) -> User:
    """The user when they hold `permission`; AuthError (401 / 403) otherwise."""
    if user is None:
        raise AuthError("please log in", status=401)
    if not user.can(permission):
        raise AuthError(f"{user.name} ({user.role.value}) may not do this: {permission.value} role needed")
    return user


# Users


def add_user(app: Pipeline, *, name: str, role: str | Role, password: str, by: str | None = None) -> User:
    create_user(app, name=name, role=role, password=password, by=by)
    return User(name.strip(), Role(role))


def login(app: Pipeline, *, name: str, password: str) -> User | None:
    """The user when name and password match an active account (argon2 verify), else None."""
    name = (name or "").strip()
    if not name or not password:
        return None
    role = verify_user(app, name=name, password=password)
    return None if role is None else User(name, role)


def get_user(app: Pipeline, *, name: str) -> User | None:
    """An active user by name, or None."""
    row = _active_row(app, name)
    return None if row is None else User(row.name, Role(row.role))


def _active_row(app: Pipeline, name: str) -> store.UserRow | None:
    with app.read() as session:
        row = store.get_user(session, name=name)
    return row if row is not None and row.active else None


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: str
    active: bool
    created_at: str


def list_users(app: Pipeline) -> list[UserInfo]:
    with app.read() as session:
        rows = store.list_users(session)
    return [UserInfo(r.name, r.role, r.active, r.created_at.isoformat(timespec="seconds")) for r in rows]


# Sessions


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _at(app: Pipeline, now: float | None) -> datetime | None:
    """The time of a check: the pipeline's clock, or `now` (epoch seconds) when given; None for a
    time beyond what datetime holds (every session has ended by then)."""
    if now is None:
        return app.clock()
    try:
        return datetime.fromtimestamp(now, UTC)
    except (OverflowError, ValueError, OSError):
        return None


class Sessions:
    """Server-side browser sessions: the cookie is a random token, the database holds its hash, the
    user, and when it was last used. A session ends at logout (in every process), after
    `idle_seconds` without a request, or `seconds` after login. The role is read from the users
    table on every check, so a role change or deactivation applies at once."""

    def __init__(self, app: Pipeline, *, seconds: int = SESSION_SECONDS, idle_seconds: int | None = None) -> None:
        self.app = app
        self.seconds = seconds
        self.idle = timedelta(seconds=idle_seconds or app.settings.session_idle_minutes * 60)

    def issue(self, user: User, *, now: float | None = None) -> str:
        token = secrets.token_urlsafe(32)
        at = _at(self.app, now) or self.app.clock()
        row = store.UserSessionRow(
            token_hash=_token_hash(token),
            user_name=user.name,
            created_at=at,
            last_seen_at=at,
            expires_at=at + timedelta(seconds=self.seconds),
        )
        with self.app.write() as session:
            store.add_user_session(session, row=row)
        return token

    def user(self, cookie: str | None, *, now: float | None = None) -> User | None:
        """The active user a cookie stands for, or None (missing, unknown, ended, idle, inactive user)."""
        at = _at(self.app, now)
        if not cookie or len(cookie) > 256 or at is None:
            return None
        token_hash = _token_hash(cookie)
        with self.app.read() as session:
            found = store.live_user_session(session, token_hash=token_hash, now=at, idle_since=at - self.idle)
            row = None if found is None else store.get_user(session, name=found.user_name)
        if found is None or row is None or not row.active:
            return None
        seen = found.last_seen_at if found.last_seen_at.tzinfo else found.last_seen_at.replace(tzinfo=UTC)
        if found.id is not None and at - seen > _TOUCH_EVERY:  # a write a minute at most, not per request
            with self.app.write() as session:
                store.touch_user_session(session, session_id=found.id, now=at, older_than=at - _TOUCH_EVERY)
        return User(row.name, Role(row.role))

    def end(self, cookie: str | None) -> None:
        """Log out: the session ends for every client and process holding this cookie."""
        if cookie and len(cookie) <= 256:
            with self.app.write() as session:
                store.revoke_user_sessions(session, now=self.app.clock(), token_hash=_token_hash(cookie))


def cookie_options(app: Pipeline, *, scheme: str, forwarded_proto: str | None) -> dict[str, Any]:
    """How to set the session cookie: HttpOnly, SameSite=Lax, and Secure whenever the page is served
    over HTTPS (the request's scheme, or `X-Forwarded-Proto: https` when `behind_proxy` is set)."""
    proto = (forwarded_proto or "").split(",")[0].strip().lower() if app.settings.behind_proxy else ""
    secure = scheme == "https" or proto == "https"
    return {"httponly": True, "samesite": "lax", "secure": secure, "path": "/"}


# Who is calling (HTTP): session cookie or HTTP Basic


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(name, password) from an `Authorization: Basic …` header value; None for anything else."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or len(value) > 4096:
        return None
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (name, password) if sep else None


def attempt_login(app: Pipeline, *, name: str, password: str, address: str | None) -> User | None:
    """`login` behind the shared throttle: TooManyAttempts (before any password check) when this
    address must wait or the account is locked; a failure is counted, a success clears them."""
    standing = throttle.check(app, name=name, address=address)
    user = login(app, name=name, password=password)
    if user is None:
        throttle.record_failure(app, name=name, address=address)
    else:
        throttle.record_success(app, name=name, address=address, standing=standing)
    return user


def authenticate(
    app: Pipeline, sessions: Sessions, *, cookie: str | None, authorization: str | None, address: str | None = None
) -> User | None:
    """The user making an HTTP request: a valid session cookie (the web UI's login), else HTTP Basic
    credentials of a stored, active user (argon2 check behind the throttle, which may raise
    TooManyAttempts; for scripts and integrations); else None. Station API tokens are not users and
    never identify one."""
    user = sessions.user(cookie)
    if user is not None:
        return user
    credentials = basic_credentials(authorization)
    if credentials is None:
        return None
    name, password = credentials
    return attempt_login(app, name=name, password=password, address=address)


def create_user(app: Pipeline, *, name: str, role: str | Role, password: str, by: str | None = None) -> None:
    from argon2 import PasswordHasher  # a C extension only password work needs: loaded on first use

    name = validate_name(name, "user name")
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
            store.add_event(session, kind="user.created", at=now, actor=by, detail={"name": name, "role": role_value})
    except store.AlreadyExists:
        raise InputError(f"user {name!r} already exists") from None


def verify_user(app: Pipeline, *, name: str, password: str) -> Role | None:
    """The user's role when the password matches an active user, else None."""
    from argon2 import PasswordHasher  # a C extension only password work needs: loaded on first use
    from argon2.exceptions import Argon2Error

    row = _active_row(app, name)
    try:
        # An unknown or inactive name costs one argon2 verify too: its timing tells nothing.
        PasswordHasher().verify(row.password_hash if row is not None else _dummy_hash(), password)
    except Argon2Error:
        return None
    return None if row is None else Role(row.role)


@functools.cache
def _dummy_hash() -> str:
    """An argon2 hash no password matches in practice, with the same parameters as real ones."""
    from argon2 import PasswordHasher  # a C extension only password work needs: loaded on first use

    return PasswordHasher().hash(secrets.token_urlsafe(32))
