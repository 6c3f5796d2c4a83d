"""``python -m amplifier_session_storage.cli``: the same as ``sessctl``."""

from .main import main

main()
