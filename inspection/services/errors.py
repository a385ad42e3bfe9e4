"""Errors of the use cases: the API maps them to status codes, the CLI to messages."""

from __future__ import annotations

from inspection.core.domain import PolicyError
from inspection.store import QueueConflict


class InputError(ValueError):
    """Bad request data: 422 over HTTP."""


class UploadTooLarge(InputError):
    """Over settings.max_upload_bytes: refused before anything is stored (413)."""


class IdempotencyConflict(Exception):
    """An Idempotency-Key reused for a different image (409)."""


class NotFound(LookupError):
    """No such inspection (404)."""


class Overloaded(Exception):
    """Too much work in flight (decode slots or pixel budget full): 503 with Retry-After, nothing stored."""

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Raised by the store and the core but named here, so that callers catch every use-case error from one module.
__all__ = [
    "IdempotencyConflict",
    "InputError",
    "NotFound",
    "Overloaded",
    "PolicyError",
    "QueueConflict",
    "UploadTooLarge",
]
