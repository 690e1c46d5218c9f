"""The modules an install compiles with mypyc, and whether this install runs them compiled.

They are the worker's and replay's per-event path: admission (and a raw record's source
mapping), routing, the rule steps, the due index and sweeps, the state codec, and replay's
loop. Compiled, the same source takes about a sixth less CPU per event. `setup.py` reads
`COMPILED` from this file; it must import nothing outside the standard library.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

COMPILED = (
    "monitor.authoring.replay",
    "monitor.engine.admission",
    "monitor.engine.clock",
    "monitor.engine.context",
    "monitor.engine.driver",
    "monitor.engine.due",
    "monitor.engine.indexing",
    "monitor.engine.reorder",
    "monitor.engine.ruleset",
    "monitor.engine.state",
    "monitor.engine.stored",
    "monitor.engine.kinds.burst",
    "monitor.engine.kinds.contradiction",
    "monitor.engine.kinds.during",
    "monitor.engine.kinds.requires",
    "monitor.engine.kinds.stalled",
    "monitor.events.fast",
    "monitor.events.mapping",
    "monitor.events.native",
    "monitor.rules.calendar",
    "monitor.rules.compiled",
    "monitor.rules.expressions",
)


def is_compiled(module: str) -> bool:
    """Whether `module` was loaded from a compiled extension, not from its source."""
    path = getattr(importlib.import_module(module), "__file__", None) or ""
    return path.endswith(tuple(EXTENSION_SUFFIXES))


def engine_form() -> str:
    """`compiled` when every module of `COMPILED` runs compiled, `python` when none does, and
    `mixed` otherwise (an install whose build stopped part way, or a stale in-place build)."""
    compiled = sum(is_compiled(module) for module in COMPILED)
    if compiled == len(COMPILED):
        return "compiled"
    return "python" if compiled == 0 else "mixed"


def stale(root: Path) -> list[str]:
    """The modules of `COMPILED` built in place under `root` before their source last changed.

    Python imports a compiled module ahead of its source, so such a module runs its old code.
    """
    found = []
    for module in COMPILED:
        source = root / (module.replace(".", "/") + ".py")
        built = [source.with_name(source.stem + suffix) for suffix in EXTENSION_SUFFIXES]
        changed = source.stat().st_mtime
        if any(b.exists() and b.stat().st_mtime < changed for b in built):
            found.append(module)
    return found
