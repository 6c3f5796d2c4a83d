"""The one error tree of amplifier-session-storage.

Every error the library raises derives from :class:`StorageError`::

    StorageError
    ├── InvalidInputError          bad id, slug, argument or config value (also a ValueError)
    │   └── ConfigurationError     an invalid StorageConfig / environment variable
    ├── NotFoundError              an object, ref, block or remote that does not exist
    │   └── SessionNotFoundError   no such session
    ├── ConflictError              a compare-and-swap lost a race; nothing was written over
    │   └── NotFastForwardError    a push/pull that would drop remote or local history
    ├── IntegrityError             stored bytes do not match their id, or cannot be decoded
    │   └── CorruptObjectError     an object whose framing/encoding is malformed
    ├── AccessDeniedError          the caller may not see or change this data
    ├── AuthenticationError        credentials were refused or could not be obtained
    ├── RemoteError                a remote (Blob / Cosmos) failed
    │   └── TransientRemoteError   throttling, timeouts, dropped connections: safe to retry
    └── MigrationError             an Amplifier file could not be imported (names file + line)

SDK exceptions never escape a backend: they are mapped into this tree (``raise X from exc``).
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "CorruptObjectError",
    "IntegrityError",
    "InvalidInputError",
    "MigrationError",
    "NotFastForwardError",
    "NotFoundError",
    "RemoteError",
    "SessionNotFoundError",
    "StorageError",
    "TransientRemoteError",
]


class StorageError(Exception):
    """Root of every error raised by this library."""


class InvalidInputError(StorageError, ValueError):
    """An argument (id, slug, path, option) was refused before anything was written."""


class ConfigurationError(InvalidInputError):
    """A configuration value or environment variable is invalid."""


class NotFoundError(StorageError, LookupError):
    """The named object, ref, block or remote does not exist."""


class SessionNotFoundError(NotFoundError):
    """No session with this id exists (or it is not visible to the caller)."""

    def __init__(self, session_id: str, message: str | None = None) -> None:
        self.session_id = session_id
        super().__init__(message or f"session not found: {session_id!r}")


class ConflictError(StorageError):
    """A compare-and-swap lost a race: the ref moved; nothing was overwritten."""


class NotFastForwardError(ConflictError):
    """The update would discard history the other side has (use force to override)."""


class IntegrityError(StorageError):
    """Stored bytes do not hash to their id, or an object is missing its parts."""

    def __init__(self, message: str, object_id: str | None = None) -> None:
        self.object_id = object_id
        super().__init__(message)


class CorruptObjectError(IntegrityError):
    """An object's framing or encoding is malformed (truncated, bad header, bad msgpack)."""


class AccessDeniedError(StorageError, PermissionError):
    """The caller may not read or change this data (visibility / tenancy)."""


class AuthenticationError(StorageError):
    """Credentials were refused or could not be obtained."""


class RemoteError(StorageError):
    """A remote store failed permanently."""


class TransientRemoteError(RemoteError):
    """A remote failure that may succeed on retry (429, 449, 5xx, timeout, reset)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class MigrationError(StorageError):
    """An Amplifier session file could not be (fully) imported."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")
