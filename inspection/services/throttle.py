"""Login throttle and account lock-out, shared by every way in (HTML login, `POST /api/v1/session`,
HTTP Basic) and by every process (the failures are rows in the database).

Per address first: after `ADDRESS_FREE` failures in `ADDRESS_WINDOW` from one client address (any
account name), that address waits before its next try, 30 s doubling per further failure, at most
15 minutes. Attempts while waiting are refused without checking the password and are not counted,
so a flood does not stretch the wait.

Per account only after many failures from many addresses (`ACCOUNT_LIMIT` from at least
`ACCOUNT_ADDRESSES` in `ACCOUNT_WINDOW`, counted since the last lock ended): the account is locked
for `LOCK_DURATION` and an `account.locked` event tells the admins. An attacker on one address can
therefore never lock a real user out, and a lock always runs out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from inspection import store
from inspection.services.context import Pipeline

ADDRESS_WINDOW = timedelta(minutes=15)
ADDRESS_FREE = 5
ADDRESS_FIRST_WAIT = timedelta(seconds=30)
ADDRESS_MAX_WAIT = timedelta(minutes=15)
ACCOUNT_WINDOW = timedelta(hours=1)
ACCOUNT_LIMIT = 20
ACCOUNT_ADDRESSES = 3
LOCK_DURATION = timedelta(minutes=15)
KEEP_FAILURES = timedelta(days=1)
_NAME_LEN = 64


class TooManyAttempts(Exception):
    """Refused before checking the password; `retry_after` in whole seconds (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class Standing:
    """What `check` saw: failures from this address (a success clears them only when there are any)."""

    address_failures: int


def _key(name: str, address: str | None) -> tuple[str, str]:
    return name.strip()[:_NAME_LEN], (address or "unknown")[:_NAME_LEN]


def _seconds(delta: timedelta) -> int:
    return math.ceil(delta.total_seconds())


def address_wait(failures: int) -> timedelta:
    """How long an address waits after its latest failure, given its failures in the window."""
    if failures < ADDRESS_FREE:
        return timedelta(0)
    return min(ADDRESS_MAX_WAIT, ADDRESS_FIRST_WAIT * 2 ** min(failures - ADDRESS_FREE, 16))


def check(app: Pipeline, *, name: str, address: str | None) -> Standing:
    """Raise TooManyAttempts when this address must wait or the account is locked."""
    name, address = _key(name, address)
    now = app.clock()
    with app.read() as session:
        by_address = store.address_failures(session, address=address, since=now - ADDRESS_WINDOW)
        lock = store.account_lock(session, name=name) if name else None
    if by_address.last_at is not None:
        ready = by_address.last_at + address_wait(by_address.failures)
        if ready > now:
            raise TooManyAttempts(
                "too many failed logins from this address: wait before trying again",
                retry_after=_seconds(ready - now),
            )
    if lock is not None and lock.locked_until > now:
        raise TooManyAttempts(
            "this account is locked after many failed logins: try again later or ask an admin",
            retry_after=_seconds(lock.locked_until - now),
        )
    return Standing(by_address.failures)


def record_failure(app: Pipeline, *, name: str, address: str | None) -> None:
    """Count a failed login; lock the account (with an `account.locked` event) past the limits."""
    name, address = _key(name, address)
    now = app.clock()
    with app.write() as session:
        store.add_login_failure(session, name=name, address=address, at=now)
        store.prune_login_failures(session, before=now - KEEP_FAILURES)
        if not name:
            return
        lock = store.account_lock(session, name=name)
        since = now - ACCOUNT_WINDOW
        if lock is not None:
            since = max(since, lock.locked_until)
        by_account = store.account_failures(session, name=name, since=since)
        if by_account.failures >= ACCOUNT_LIMIT and by_account.addresses >= ACCOUNT_ADDRESSES:
            until = now + LOCK_DURATION
            store.lock_account(session, name=name, now=now, until=until)
            detail = {
                "name": name,
                "failures": by_account.failures,
                "addresses": by_account.addresses,
                "until": until.isoformat(timespec="seconds"),
            }
            store.add_event(session, kind="account.locked", at=now, actor=None, detail=detail)


def record_success(app: Pipeline, *, name: str, address: str | None, standing: Standing) -> None:
    """A login worked: this address's failures on this account are forgotten (no write when none)."""
    if standing.address_failures == 0:
        return
    name, address = _key(name, address)
    with app.write() as session:
        store.clear_login_failures(session, name=name, address=address)
