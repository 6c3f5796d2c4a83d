"""Fixtures for the Amplifier import/export tests: a repository, the session generator."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from amplifier_session_storage.repository import Repository
from amplifier_session_storage.stores import MemoryObjectStore, MemoryRefStore

GENERATOR = Path(__file__).resolve().parents[2] / "scripts" / "generate_sessions.py"


@pytest.fixture
def repo() -> Repository:
    return Repository(MemoryObjectStore(), MemoryRefStore(), user_id="tester", device_id="dev")


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    """scripts/generate_sessions.py, loaded as its docstring says (skip visibly if absent)."""
    if not GENERATOR.is_file():
        pytest.skip(f"session generator not found at {GENERATOR}")
    spec = importlib.util.spec_from_file_location("generate_sessions", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_sessions"] = module
    spec.loader.exec_module(module)
    return module
