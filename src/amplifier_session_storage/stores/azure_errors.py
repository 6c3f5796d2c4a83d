"""The one place where Azure SDK exceptions become errors of this library.

Every call into ``azure.storage.blob.aio`` or ``azure.cosmos.aio`` runs inside
:func:`blob_errors` / :func:`cosmos_errors`; nothing from the SDKs escapes a backend::

    HTTP / condition                         raised here
    ---------------------------------------  ------------------------------------------------
    429, 449, 408, 410, 5xx, timeouts,       TransientRemoteError(retry_after=seconds|None)
    dropped or refused connections           (retry_after from x-ms-retry-after-ms/Retry-After)
    401, credential failures                 AuthenticationError
    403                                      AccessDeniedError (AuthenticationError when the
                                             service says the signature/token was refused)
    404                                      NotFoundError        (callers turn it into None)
    409                                      AlreadyExistsError   (a ConflictError)
    412                                      PreconditionFailedError (a ConflictError)
    416                                      RangeNotSatisfiableError (a RemoteError)
    anything else                            RemoteError

Messages name the operation, the status and the service's error code, never a secret: text
taken from an SDK message goes through :func:`scrub`, which removes every registered secret
(keys, connection strings, client secrets: see :func:`register_secret`) and anything that
looks like a key or a signature.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RemoteError,
    StorageError,
    TransientRemoteError,
)

__all__ = [
    "AlreadyExistsError",
    "PreconditionFailedError",
    "RangeNotSatisfiableError",
    "blob_errors",
    "cosmos_errors",
    "map_error",
    "register_secret",
    "retry_after_from_headers",
    "scrub",
]

TRANSIENT_STATUS = frozenset({408, 410, 429, 449, 500, 502, 503, 504})
MAX_DETAIL = 240

_secrets: set[str] = set()
_KEY_VALUE = re.compile(
    r"(?i)\b(AccountKey|SharedAccessSignature|sig|client_secret|secret|password|key)=([^;&\s]+)"
)
_AUTH_HEADER = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s,;\"']+")
_BASE64ISH = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")


class AlreadyExistsError(ConflictError):
    """HTTP 409: the item or blob exists (a create lost a race, or was already done)."""


class PreconditionFailedError(ConflictError):
    """HTTP 412: an etag condition failed (somebody changed the item first)."""


class RangeNotSatisfiableError(RemoteError):
    """HTTP 416: a ranged read starts past the end of the blob."""


def register_secret(value: str | None) -> None:
    """Remember a secret so that :func:`scrub` removes it from any text we raise or log."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    """``text`` without registered secrets or key/signature-looking substrings."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    text = _KEY_VALUE.sub(lambda m: f"{m.group(1)}=***", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}***", text)
    # Mixed-case base64 runs are keys or signatures; lower-case hex (object ids) stays readable.
    return _BASE64ISH.sub(_redact_base64, text)


def _redact_base64(m: re.Match[str]) -> str:
    run = m.group(0)
    if any(c.isupper() for c in run) and any(c.islower() for c in run):
        return "***"
    return run


def retry_after_from_headers(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds to wait according to ``x-ms-retry-after-ms`` or ``Retry-After`` (or ``None``)."""
    if not headers:
        return None
    lower = {str(k).lower(): v for k, v in headers.items()}
    ms = lower.get("x-ms-retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except (TypeError, ValueError):
            pass
    ra = lower.get("retry-after")
    if ra is not None:
        try:
            return max(0.0, float(ra))
        except (TypeError, ValueError):
            try:
                when = email.utils.parsedate_to_datetime(str(ra))
            except (TypeError, ValueError):
                return None
            return max(0.0, when.timestamp() - time.time())
    return None


def _headers_of(exc: BaseException) -> Mapping[str, Any] | None:
    headers = getattr(exc, "headers", None)
    if isinstance(headers, Mapping) and headers:
        return headers
    response = getattr(exc, "response", None)
    h = getattr(response, "headers", None)
    return h if isinstance(h, Mapping) else None


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _detail(exc: BaseException) -> str:
    raw = getattr(exc, "http_error_message", None) or getattr(exc, "message", None) or str(exc)
    first = " ".join(str(raw).split())
    return scrub(first)[:MAX_DETAIL]


def map_error(exc: BaseException, what: str, service: str) -> StorageError:
    """The library error for an SDK (or network) exception raised while doing ``what``."""
    # Imported lazily: the base package must import without the Azure SDKs installed.
    from azure.core.exceptions import (
        ClientAuthenticationError,
        DecodeError,
        ResourceExistsError,
        ResourceModifiedError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, StorageError):
        return exc
    status = _status_of(exc)
    code = getattr(exc, "error_code", None) or ""
    code = str(getattr(code, "value", code))  # the Blob SDK gives a StorageErrorCode enum
    headers = _headers_of(exc)
    if not code and headers:
        code = str({str(k).lower(): v for k, v in headers.items()}.get("x-ms-error-code", ""))
    where = f"{what}: {service}"
    label = f"HTTP {status}" + (f" {code}" if code else "") if status else type(exc).__name__
    msg = f"{where} {label}: {_detail(exc)}"
    retry_after = retry_after_from_headers(headers)

    # A body cut off in transit carries the (successful) status of its response.
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, DecodeError)):
        return TransientRemoteError(msg, retry_after=retry_after)
    if status is None:
        if isinstance(exc, ClientAuthenticationError):
            return AuthenticationError(
                f"{where}: credentials could not be obtained: {_detail(exc)}"
            )
        if isinstance(exc, ResourceNotFoundError):
            return NotFoundError(msg)
        if isinstance(exc, ResourceExistsError):
            return AlreadyExistsError(msg)
        if isinstance(exc, ResourceModifiedError):
            return PreconditionFailedError(msg)
        if (
            isinstance(exc, (TimeoutError, ConnectionError, OSError))
            or type(exc).__name__ == "CosmosClientTimeoutError"
            or type(exc).__module__.startswith("aiohttp")
        ):
            return TransientRemoteError(msg, retry_after=retry_after)
        return RemoteError(msg)

    if status in TRANSIENT_STATUS or (status >= 500 and status != 501):
        return TransientRemoteError(msg, retry_after=retry_after)
    if status == 401:
        return AuthenticationError(msg)
    if status == 403:
        if isinstance(exc, ClientAuthenticationError) or code in (
            "AuthenticationFailed",
            "InvalidAuthenticationInfo",
        ):
            return AuthenticationError(msg)
        return AccessDeniedError(msg)
    if status == 404:
        return NotFoundError(msg)
    if status == 409:
        return AlreadyExistsError(msg)
    if status == 412:
        return PreconditionFailedError(msg)
    if status == 416:
        return RangeNotSatisfiableError(msg)
    return RemoteError(msg)


@contextmanager
def blob_errors(what: str) -> Iterator[None]:
    """Run Blob SDK calls; any SDK or network exception leaves as a library error."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if not _is_sdk_or_network(exc):
            raise
        raise map_error(exc, what, "blob") from exc


@contextmanager
def cosmos_errors(what: str) -> Iterator[None]:
    """Run Cosmos SDK calls; any SDK or network exception leaves as a library error."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        if not _is_sdk_or_network(exc):
            raise
        raise map_error(exc, what, "cosmos") from exc


def _is_sdk_or_network(exc: BaseException) -> bool:
    """SDK and transport exceptions are mapped; programming errors (TypeError...) are not."""
    from azure.core.exceptions import AzureError

    if isinstance(exc, (AzureError, TimeoutError, ConnectionError, OSError)):
        return True
    return type(exc).__module__.startswith(("aiohttp", "azure."))
