"""Durations as rule authors write them: `90s`, `15m`, `4h`, `2d`, `1w` (and combinations `1h30m`)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+)([smhdw])")
_WHOLE = re.compile(r"^(\d+[smhdw])+$")


def parse_duration(text: str) -> timedelta:
    """Parse a duration like `15m` or `1h30m`; raise ValueError with the expected form."""
    compact = text.strip()
    if not _WHOLE.match(compact):
        raise ValueError(f"expected a duration like '15m', '4h' or '2d', got {text!r}")
    seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(compact))
    if seconds == 0:
        raise ValueError(f"a duration must be longer than zero, got {text!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest rule-style spelling of a duration: `2d`, `1h30m`."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def humanize(delta: timedelta) -> str:
    """A reader's duration: `3 days`, `2 hours`, `45 minutes` (largest unit, rounded down)."""
    seconds = abs(int(delta.total_seconds()))
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {name}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
