"""Fixtures of the sync tests (real SDKs against azurite and the patched Cosmos emulator).

``sync_env`` gives each test a fresh Cosmos DB container and Blob container (deleted
afterwards), a ``RemoteSpec`` for them and local repositories under ``tmp_path``. The
``emulators`` session fixture comes from tests/emulator_fixtures.py: without Node.js these
tests FAIL, they are never skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sync_support import SyncEnv

from amplifier_session_storage.remote.api import init_remote


@pytest.fixture
async def sync_env(
    emulators: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SyncEnv]:
    env = SyncEnv(emulators, tmp_path)
    for key, value in env.environ.items():
        monkeypatch.setenv(key, value)
    await init_remote(env.spec)
    try:
        yield env
    finally:
        await env.cleanup()
