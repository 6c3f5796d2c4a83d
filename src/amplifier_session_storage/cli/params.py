"""Argument types shared by verbs."""

from __future__ import annotations

import re

import click

__all__ = ["DURATION", "Duration"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``90s``, ``30m``, ``12h``, ``14d``, ``2w``, ``1d12h`` or plain seconds -> seconds."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        pos, total = 0, 0.0
        while pos < len(text):
            m = _PART.match(text, pos)
            if m is None or (m.group(2) == "" and m.end() != len(text)):
                self.fail(
                    f"{value!r} is not a duration (e.g. 0, 90s, 30m, 12h, 14d, 2w)", param, ctx
                )
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if not text:
            self.fail("empty duration", param, ctx)
        return total


DURATION = Duration()
