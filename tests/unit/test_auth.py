"""Roles and permissions (pure)."""

from __future__ import annotations

import pytest

from inspection.core.domain import Role
from inspection.services.accounts import AuthError, Permission, User, require


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.INSPECTOR, {Permission.REVIEW}),
        (Role.ENGINEER, {Permission.REVIEW, Permission.ENGINEER}),
        (Role.ADMIN, {Permission.REVIEW, Permission.ENGINEER, Permission.ADMIN}),
    ],
)
def test_each_role_gets_exactly_its_permissions(role: Role, allowed: set[Permission]) -> None:
    user = User("u", role)
    assert {p for p in Permission if user.can(p)} == allowed


def test_require_refuses_anonymous_with_401_and_wrong_role_with_403() -> None:
    with pytest.raises(AuthError) as anon:
        require(None, Permission.REVIEW)
    assert anon.value.status == 401
    with pytest.raises(AuthError) as wrong:
        require(User("ann", Role.INSPECTOR), Permission.ENGINEER)
    assert wrong.value.status == 403 and "ann" in str(wrong.value)
    assert require(User("eve", Role.ENGINEER), Permission.ENGINEER).name == "eve"
