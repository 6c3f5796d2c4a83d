"""Printing: data on stdout (JSON or text), notes and progress on stderr.

Colour only when stdout is a terminal (and ``NO_COLOR`` is unset); a rich progress bar only
when stderr is a terminal and ``--quiet`` was not given. rich is imported only then.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["Output", "Progress"]

STYLES: dict[str, dict[str, Any]] = {
    "id": {"fg": "yellow"},
    "ref": {"fg": "green", "bold": True},
    "label": {"fg": "magenta", "bold": True},
    "graph": {"fg": "cyan"},
    "head": {"bold": True},
    "added": {"fg": "green"},
    "removed": {"fg": "red"},
    "dim": {"dim": True},
}


class Progress:
    """A progress handle; the base class does nothing (not a terminal, or --quiet)."""

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""

    def update(
        self, completed: int | None = None, total: int | None = None, description: str | None = None
    ) -> None:
        """Set the count, the total or the description."""


class _RichProgress(Progress):
    def __init__(self, progress: Any, task: Any) -> None:
        self._p, self._t = progress, task

    def advance(self, n: int = 1) -> None:
        self._p.advance(self._t, n)

    def update(
        self, completed: int | None = None, total: int | None = None, description: str | None = None
    ) -> None:
        kw: dict[str, Any] = {}
        if completed is not None:
            kw["completed"] = completed
        if total is not None:
            kw["total"] = total
        if description is not None:
            kw["description"] = description
        self._p.update(self._t, **kw)


class Output:
    """Where a verb prints: ``json``/``line``/``lines``/``table`` to stdout, ``note`` to
    stderr, ``progress`` on stderr."""

    def __init__(self, *, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.color = _isatty(sys.stdout) and "NO_COLOR" not in os.environ

    # --------------------------------------------------------------- stdout
    def json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))

    def style(self, text: str, style: str) -> str:
        if not self.color or not style or style not in STYLES:
            return text
        return click.style(text, **STYLES[style])

    def line(self, text: str = "", style: str = "") -> None:
        click.echo(self.style(text, style), color=self.color)

    def segments(self, segments: Iterable[tuple[str, str]]) -> None:
        click.echo("".join(self.style(t, s) for t, s in segments), color=self.color)

    def lines(self, lines: Iterable[Sequence[tuple[str, str]]]) -> None:
        for segs in lines:
            self.segments(segs)

    def fields(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """``Key:   value`` lines, aligned."""
        width = max((len(k) for k, _ in pairs), default=0) + 2
        for key, value in pairs:
            self.line(f"{key + ':':<{width}}{value}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        self.line(fmt(headers), "head")
        for r in rows:
            self.line(fmt(r))

    def binary(self, data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    # --------------------------------------------------------------- stderr
    def note(self, text: str) -> None:
        """A message for a person (suppressed by --quiet)."""
        if not self.quiet:
            click.echo(text, err=True)

    @contextmanager
    def progress(self, description: str, total: int | None = None) -> Iterator[Progress]:
        """A rich progress bar (a spinner when ``total`` is None) while the block runs."""
        if self.quiet or not _isatty(sys.stderr):
            yield Progress()
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with RichProgress(*columns, console=Console(stderr=True), transient=True) as p:
            yield _RichProgress(p, p.add_task(description, total=total))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
