"""Fixtures for the Amplifier import/export tests: a repository, the session generator."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from amplifier_session_storage.repository import Repository
from amplifier_session_storage.stores import MemoryObjectStore, MemoryRefStore
from helpers.generator import load_generator

GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "generate_sessions.py"


@pytest.fixture
def repo() -> Repository:
    return Repository(MemoryObjectStore(), MemoryRefStore(), user_id="tester", device_id="dev")


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    """scripts/generate_sessions.py, loaded as its docstring says (skip visibly if absent)."""
    if not GENERATOR.is_file():
        pytest.skip(f"session generator not found at {GENERATOR}")
    return load_generator()
