"""Fixtures of the Azure tests (real SDKs against azurite and the patched Cosmos emulator).

The session fixture ``emulators`` comes from ``tests/emulator_fixtures.py`` (registered by
tests/conftest.py); without Node.js the tests FAIL, they are never skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure_support import AzureResources


@pytest.fixture
async def azure(emulators: Any) -> AsyncIterator[AzureResources]:
    """Per-test remotes and stores on fresh containers, deleted afterwards."""
    res = AzureResources(emulators)
    try:
        yield res
    finally:
        await res.cleanup()
