"""Fixtures for the sessctl integration tests (defined in cli_support, shared here)."""

from cli_support import heads, sessctl, store

__all__ = ["heads", "sessctl", "store"]
