"""Request and byte counts of a remote (filled by ``transport.CountingTransport``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransferStats"]


@dataclass
class TransferStats:
    """HTTP requests and body bytes, as seen by the transport."""

    requests: int = 0
    failed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def snapshot(self) -> TransferStats:
        return TransferStats(self.requests, self.failed, self.bytes_sent, self.bytes_received)

    def since(self, before: TransferStats) -> TransferStats:
        """What was counted after ``before`` (a snapshot) was taken."""
        return TransferStats(
            self.requests - before.requests,
            self.failed - before.failed,
            self.bytes_sent - before.bytes_sent,
            self.bytes_received - before.bytes_received,
        )

    def to_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "failed": self.failed,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }
