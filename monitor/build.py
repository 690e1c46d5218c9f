"""The modules an install compiles with mypyc, and whether this install runs them compiled.

They are the worker's and replay's per-event path: admission (and a raw record's source
mapping), routing, the rule steps, the due index and sweeps, the state codec, and replay's
loop. Compiled, the same source takes about a sixth less CPU per event. `setup.py` reads
`COMPILED` from this file; it must import nothing outside the standard library.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from importlib.util import find_spec
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


def source(module: str) -> str:
    """The source file of one module of `COMPILED`, relative to the project root."""
    return module.replace(".", "/") + ".py"


def is_compiled(module: str) -> bool:
    """Whether `module` is (or would be) loaded from a compiled extension, not from its source.

    Read from its import spec: a process that does not run the engine (the notifier) does not
    import it to say so.
    """
    spec = find_spec(module)
    return (spec.origin or "").endswith(tuple(EXTENSION_SUFFIXES)) if spec else False


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
        path = root / source(module)
        built = [path.with_name(path.stem + suffix) for suffix in EXTENSION_SUFFIXES]
        changed = path.stat().st_mtime
        if any(b.exists() and b.stat().st_mtime < changed for b in built):
            found.append(module)
    return found
