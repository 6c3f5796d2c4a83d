"""An HTTP transport for the Azure SDK clients that counts what goes over the wire.

Every request the Cosmos DB and Blob clients send (their own retries included) passes
through :class:`CountingTransport`, which adds to a shared :class:`TransferStats`: one
request, the request body's bytes (``Content-Length``) and the response body's bytes
(``Content-Length``, or the loaded body's size). Headers are not counted. A request that
fails without an answer still counts as a request (and as ``failed``).

This module imports ``azure.core``: it is imported only when a remote is opened.
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.transport import AioHttpTransport

from .stats import TransferStats

__all__ = ["CountingTransport", "TransferStats"]


def _length(headers: Any) -> int | None:
    try:
        value = headers.get("Content-Length")
    except AttributeError:
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class CountingTransport(AioHttpTransport):  # type: ignore[misc]  # azure.core is untyped here
    """``AioHttpTransport`` that adds every request to ``stats``."""

    def __init__(self, stats: TransferStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stats = stats

    async def send(self, request: Any, **kwargs: Any) -> Any:
        stats = self.stats
        stats.requests += 1
        sent = _length(request.headers)
        if sent is None:
            data = getattr(request, "data", None)
            sent = len(data) if isinstance(data, bytes | bytearray | memoryview) else 0
        stats.bytes_sent += sent
        try:
            response = await super().send(request, **kwargs)
        except BaseException:
            stats.failed += 1
            raise
        received = _length(response.headers)
        if received is None and not kwargs.get("stream"):
            try:
                received = len(response.body())
            except Exception:  # a body that cannot be measured is not counted
                received = 0
        stats.bytes_received += received or 0
        return response
