"""Rule files: the format (schema), reading (loader), compiling (compiler) — and `load_rules`.

The names below are imported on first use, not with the package: the engine imports
`monitor.rules.compiled`, and the compiler reads the engine's kinds, so importing this package
must not import the compiler.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.rules.compiled import CompiledMatcher, CompiledRule
    from monitor.rules.limits import RuleLimits
    from monitor.rules.load import LoadResult, load_rules

__all__ = ["CompiledMatcher", "CompiledRule", "LoadResult", "RuleLimits", "load_rules"]

_HOMES = {
    "CompiledMatcher": "monitor.rules.compiled",
    "CompiledRule": "monitor.rules.compiled",
    "RuleLimits": "monitor.rules.limits",
    "LoadResult": "monitor.rules.load",
    "load_rules": "monitor.rules.load",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
