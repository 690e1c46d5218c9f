"""The rule kinds, one module each, every one a single `Kind` declaration registered here.

The schema (which kinds exist), the compiler (fields, slots, scopes, the typed form), the ruleset
(step, sweep), metrics and the CLI read a rule's kind from `KINDS` and nowhere else.
"""

from __future__ import annotations

from typing import Any

from monitor.engine.kinds.base import RESOLVE_ON, Kind
from monitor.engine.kinds.burst import BURST
from monitor.engine.kinds.contradiction import CONTRADICTION
from monitor.engine.kinds.during import DURING
from monitor.engine.kinds.requires import REQUIRES
from monitor.engine.kinds.stalled import STALLED

__all__ = ["KINDS", "RESOLVE_ON", "Kind", "register", "unregister"]

KINDS: dict[str, Kind[Any]] = {
    kind.name: kind for kind in (CONTRADICTION, STALLED, REQUIRES, DURING, BURST)
}


def register(kind: Kind[Any]) -> Kind[Any]:
    """Add a kind (a plug-in, or a test's toy kind); rule files can use it from the next load."""
    if kind.name in KINDS:
        raise ValueError(f"a kind named {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind added with `register`."""
    KINDS.pop(name, None)
