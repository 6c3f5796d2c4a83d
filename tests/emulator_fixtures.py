"""pytest fixtures for the Azure emulators (load with ``pytest_plugins``).

In tests/conftest.py::

    pytest_plugins = ["emulator_fixtures"]        # tests/ is on sys.path (no __init__.py)
    # or ["tests.emulator_fixtures"] when the repository root is on sys.path

The ``emulators`` fixture is session-scoped; when the emulators cannot be had
(no node/npm, install or start failure) every test using it FAILS with the
reason: it is never skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

try:  # imported as tests.emulator_fixtures
    from .emulators import EmulatorError, Emulators, ensure_emulators
except ImportError:  # imported as emulator_fixtures (tests/ on sys.path)
    from emulators import EmulatorError, Emulators, ensure_emulators  # type: ignore[no-redef]

__all__ = ["Emulators", "emulators"]


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    """Running azurite + patched Cosmos DB emulator, shared by the whole session."""
    with contextlib.ExitStack() as stack:
        try:
            emu = stack.enter_context(ensure_emulators())
        except EmulatorError as exc:
            pytest.fail(f"Azure emulators unavailable: {exc}", pytrace=False)
        yield emu
