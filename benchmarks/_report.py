"""Write a benchmark's figures into docs/benchmarks.md, replacing its previous section."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Every figure here is written by a script in `benchmarks/` or `scripts/`, run as shown under
its heading. Machines here are shared and noisy (2 cores): targets are checked by each script
against figures of the same run, and each section says whether its targets were met.
"""


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_section(title: str, body: str) -> None:
    """Replace (or add) the ``## title`` section of docs/benchmarks.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    section = (
        f"## {title}\n\nCommand: `{command_line()}`  \nRun: {stamp} on {machine}\n\n"
        f"{body.strip()}\n"
    )
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip() + "\n")
