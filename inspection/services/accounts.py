"""Users, passwords, browser sessions and role checks (shared by the web UI and the HTTP API).

Passwords are hashed with argon2 (`create_user` / `verify_user`). A browser session
is a signed cookie `inspection_session` = base64(name|expiry|password-tag) + "." + HMAC-SHA256 with
a per-installation secret kept in `data_dir/session.key` (0600). The role is read from the database
on every check (never trusted from the cookie), so a deactivated user or changed role takes effect
at once; changing a password invalidates that user's sessions (the password tag no longer matches).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from inspection import store
from inspection.core.domain import Role
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.validation import validate_name

COOKIE_NAME = "inspection_session"
SESSION_SECONDS = 12 * 3600  # one shift and a bit


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


def _tag(row: store.UserRow) -> str:
    """Changes whenever the password does: a session cookie carries it so that it goes stale."""
    return hashlib.sha256(row.password_hash.encode()).hexdigest()[:16]


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


def session_secret(data_dir: Path) -> bytes:
    """The installation's signing key, created once with 0600 permissions."""
    path = data_dir / "session.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _password_tag(app: Pipeline, name: str) -> str | None:
    row = _active_row(app, name)
    return None if row is None else _tag(row)


def _sign(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


class Sessions:
    """Issue and check signed session cookies for one installation."""

    def __init__(self, app: Pipeline, *, seconds: int = SESSION_SECONDS) -> None:
        self.app = app
        self.seconds = seconds
        self._secret = session_secret(app.settings.data_dir)

    def issue(self, user: User, *, now: float | None = None) -> str:
        tag = _password_tag(self.app, user.name) or ""
        expiry = int((now if now is not None else time.time()) + self.seconds)
        payload = f"{user.name}|{expiry}|{tag}".encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(self._secret, payload)

    def user(self, cookie: str | None, *, now: float | None = None) -> User | None:
        """The active user a cookie stands for, or None (missing, forged, expired, stale password)."""
        if not cookie or "." not in cookie or len(cookie) > 1024:
            return None
        body, _, sig = cookie.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(_sign(self._secret, payload), sig):
            return None
        try:
            name, expiry, tag = payload.decode().rsplit("|", 2)
            if int(expiry) < (now if now is not None else time.time()):
                return None
        except ValueError:
            return None
        row = _active_row(self.app, name)
        if row is None or _tag(row) != tag:
            return None
        return User(row.name, Role(row.role))


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


def authenticate(app: Pipeline, sessions: Sessions, *, cookie: str | None, authorization: str | None) -> User | None:
    """The user making an HTTP request: a valid session cookie (the web UI's login), else HTTP Basic
    credentials of a stored, active user (argon2 check; for scripts and integrations); else None.
    Station API tokens are not users and never identify one."""
    user = sessions.user(cookie)
    if user is not None:
        return user
    credentials = basic_credentials(authorization)
    if credentials is None:
        return None
    name, password = credentials
    return login(app, name=name, password=password)


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
            store.add_event(
                session, kind="user.created", at=now, actor=by, detail={"name": name, "role": role_value}
            )
    except store.AlreadyExists:
        raise InputError(f"user {name!r} already exists") from None


def verify_user(app: Pipeline, *, name: str, password: str) -> Role | None:
    """The user's role when the password matches an active user, else None."""
    from argon2 import PasswordHasher  # a C extension only password work needs: loaded on first use
    from argon2.exceptions import Argon2Error

    row = _active_row(app, name)
    if row is None:
        return None
    try:
        PasswordHasher().verify(row.password_hash, password)
    except Argon2Error:
        return None
    return Role(row.role)


