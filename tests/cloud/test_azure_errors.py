"""The SDK-error mapping of azure_errors (synthetic SDK exceptions; no network)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.cosmos.exceptions import CosmosClientTimeoutError, CosmosHttpResponseError

from amplifier_session_storage.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RemoteError,
    StorageError,
    TransientRemoteError,
)
from amplifier_session_storage.stores.azure_errors import (
    AlreadyExistsError,
    PreconditionFailedError,
    RangeNotSatisfiableError,
    blob_errors,
    cosmos_errors,
    map_error,
    register_secret,
    retry_after_from_headers,
    scrub,
)


class FakeResponse:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = headers or {}
        self.request = None
        self.content_type = "text/plain"

    def text(self, encoding: str | None = None) -> str:
        return ""

    def body(self) -> bytes:
        return b""


def http_error(status: int, headers: dict[str, str] | None = None, **kw: Any) -> HttpResponseError:
    return HttpResponseError(
        message=f"status {status}", response=FakeResponse(status, headers), **kw
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, RemoteError),
        (401, AuthenticationError),
        (403, AccessDeniedError),
        (404, NotFoundError),
        (408, TransientRemoteError),
        (409, AlreadyExistsError),
        (410, TransientRemoteError),
        (412, PreconditionFailedError),
        (413, RemoteError),
        (416, RangeNotSatisfiableError),
        (429, TransientRemoteError),
        (449, TransientRemoteError),
        (500, TransientRemoteError),
        (501, RemoteError),
        (503, TransientRemoteError),
    ],
)
def test_status_codes(status: int, kind: type[StorageError]) -> None:
    err = map_error(http_error(status), "op", "blob")
    assert type(err) is kind
    assert str(err).startswith("op: blob HTTP")
    cosmos = map_error(CosmosHttpResponseError(status_code=status, message="m"), "op", "cosmos")
    assert type(cosmos) is kind
    if kind in (AlreadyExistsError, PreconditionFailedError):
        assert isinstance(err, ConflictError)


def test_retry_after_headers() -> None:
    assert retry_after_from_headers({"x-ms-retry-after-ms": "1500"}) == 1.5
    assert retry_after_from_headers({"Retry-After": "3"}) == 3.0
    assert retry_after_from_headers({"X-MS-RETRY-AFTER-MS": "20", "Retry-After": "9"}) == 0.02
    assert retry_after_from_headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_from_headers({"Retry-After": "soon"}) is None
    assert retry_after_from_headers({}) is None
    err = map_error(http_error(429, {"x-ms-retry-after-ms": "250"}), "op", "blob")
    assert isinstance(err, TransientRemoteError) and err.retry_after == 0.25
    cosmos = CosmosHttpResponseError(status_code=429, message="throttled")
    cosmos.headers = {"x-ms-retry-after-ms": "800"}
    err = map_error(cosmos, "op", "cosmos")
    assert isinstance(err, TransientRemoteError) and err.retry_after == 0.8


def test_typed_sdk_errors() -> None:
    assert isinstance(map_error(ResourceNotFoundError("x"), "op", "blob"), NotFoundError)
    assert isinstance(map_error(ResourceExistsError("x"), "op", "blob"), AlreadyExistsError)
    assert isinstance(map_error(ResourceModifiedError("x"), "op", "blob"), PreconditionFailedError)
    assert type(map_error(RuntimeError("?"), "op", "blob")) is RemoteError
    # a body cut off in transit is transient even though its response said 200
    cut = IncompleteReadError("short body", response=FakeResponse(200))
    assert isinstance(map_error(cut, "op", "blob"), TransientRemoteError)
    assert isinstance(
        map_error(ResourceExistsError("x", response=FakeResponse(409)), "op", "blob"),
        AlreadyExistsError,
    )
    assert isinstance(
        map_error(ResourceModifiedError("x", response=FakeResponse(412)), "op", "blob"),
        PreconditionFailedError,
    )
    for exc in (
        ServiceRequestError("connect failed"),
        ServiceResponseError("connection reset"),
        CosmosClientTimeoutError(),
        TimeoutError(),
        ConnectionResetError("reset"),
    ):
        assert isinstance(map_error(exc, "op", "cosmos"), TransientRemoteError), exc
    assert isinstance(
        map_error(ClientAuthenticationError("no credential"), "op", "cosmos"), AuthenticationError
    )
    auth403 = http_error(403, {"x-ms-error-code": "AuthenticationFailed"})
    assert isinstance(map_error(auth403, "op", "blob"), AuthenticationError)


def test_context_managers_map_and_chain() -> None:
    with pytest.raises(NotFoundError) as info, cosmos_errors("read x"):
        raise CosmosHttpResponseError(status_code=404, message="gone")
    assert isinstance(info.value.__cause__, CosmosHttpResponseError)
    with pytest.raises(TransientRemoteError), blob_errors("upload"):
        raise ServiceResponseError("reset")
    # programming errors are not disguised as remote failures
    with pytest.raises(TypeError), blob_errors("upload"):
        raise TypeError("bug")
    # our own errors pass through untouched
    with pytest.raises(ConflictError), blob_errors("x"):
        raise ConflictError("mine")


def test_secrets_are_scrubbed_from_messages() -> None:
    secret = "Zm9vYmFyYmF6cXV4c2VjcmV0a2V5dmFsdWUxMjM0NTY3ODkw"
    register_secret("hunter2-is-my-secret")
    text = scrub(f"AccountKey={secret}; password=hunter2-is-my-secret; id {'ab' * 32}")
    assert secret not in text and "hunter2-is-my-secret" not in text
    assert "ab" * 32 in text  # object ids stay readable
    err = map_error(http_error(500, None), "op", "blob")
    assert "hunter2" not in str(err)
    leaky = HttpResponseError(message="bad AccountKey=" + secret, response=FakeResponse(400))
    assert secret not in str(map_error(leaky, "op", "blob"))
    leaky2 = CosmosHttpResponseError(status_code=401, message="token hunter2-is-my-secret")
    assert "hunter2-is-my-secret" not in str(map_error(leaky2, "op", "cosmos"))
