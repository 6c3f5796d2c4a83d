"""scripts/generate_sessions.py loaded as a module, once per test process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_sessions.py"
NAME = "generate_sessions"


def load_generator() -> ModuleType:
    """The generator module (registered in ``sys.modules`` before it runs: its dataclasses
    need that); no bytecode is written under scripts/."""
    mod = sys.modules.get(NAME)
    if mod is not None and getattr(mod, "__file__", None) == str(SCRIPT):
        return mod
    spec = importlib.util.spec_from_file_location(NAME, SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = mod
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = saved
    return mod
