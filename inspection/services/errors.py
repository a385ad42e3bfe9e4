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




# Raised by the store and the core but named here, so that callers catch every use-case error from one module.
__all__ = ["IdempotencyConflict", "InputError", "NotFound", "PolicyError", "QueueConflict", "UploadTooLarge"]
