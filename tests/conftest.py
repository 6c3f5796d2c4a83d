"""Shared pytest configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["emulator_fixtures"]

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


@pytest.fixture
def samples_dir() -> Path:
    """The shared Amplifier samples beside the checkout; skip visibly when absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"shared samples not found at {SAMPLES} (they live beside the checkout)")
    return SAMPLES


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never let a test touch the real ~/.amplifier."""
    if "AMPLIFIER_LOCAL_STORAGE_PATH" not in os.environ:
        monkeypatch.setenv(
            "AMPLIFIER_LOCAL_STORAGE_PATH", str(tmp_path_factory.mktemp("home") / "store")
        )
