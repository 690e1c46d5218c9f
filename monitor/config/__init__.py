"""The one positioned YAML loader: `load(path, Model)` -> the spec (or None) and every issue,
each at `file:line:col`. Rule, alerting, rule-test and source-mapping files all read through it.

`locate` parses YAML keeping positions and maps a document path to `file:line:col`; `schema`
turns pydantic's errors into `ConfigIssue`s (unknown fields with a did-you-mean); `loader`
puts the two together; `fields` holds the value types the file formats share. The loader is
imported on first use, so the engine can use `fields` without the YAML parser.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config.loader import Loaded, load, read, validate

__all__ = ["Loaded", "load", "read", "validate"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("monitor.config.loader"), name)
