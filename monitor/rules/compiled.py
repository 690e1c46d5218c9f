"""What the engine runs (`Compiled*`): frozen, checked, with CEL programs and templates built."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from monitor.events import Event, EventRef
from monitor.rules.calendar import Window
from monitor.rules.expressions import Condition
from monitor.rules.templates import MessageTemplate


@dataclass(frozen=True)
class CompiledMatcher:
    """Which events fill a slot of a rule."""

    slot: str
    sources: frozenset[str] | None
    types: frozenset[str] | None  # None: any type (the matcher selects with `where` alone)
    where: Condition | None = None

    def accepts(self, event: Event | EventRef) -> bool:
        """Whether the event's department/source and type fit (the cheap envelope check)."""
        if self.types is not None and event.type not in self.types:
            return False
        return self.sources is None or (
            event.department in self.sources or event.source in self.sources
        )


@dataclass(frozen=True)
class KeyExpression:
    """How a rule correlates events; `subject` takes a fast path."""

    text: str
    program: Condition | None = None

    def key_of(self, view: Mapping[str, Any]) -> str | None:
        """The correlation key for an event view, or None if it yields nothing usable."""
        if self.program is None:
            value = view.get("subject")
        else:
            value = self.program.value({**view, "event": view})
        if value is None or value == "":
            return None
        return str(value)


@dataclass(frozen=True)
class CompiledRule:
    """One rule, ready for the engine."""

    id: str
    title: str
    kind: str
    severity: str
    owners: tuple[str, ...]
    key: KeyExpression
    file: str
    line: int
    col: int = 0
    description: str | None = None
    message: MessageTemplate | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook: str | None = None
    realert: timedelta | None = None
    status: str = "experimental"
    tags: tuple[str, ...] = ()
    form: Any = None  # the kind's typed compiled form (see monitor.engine.kinds)
    matchers: tuple[CompiledMatcher, ...] = ()  # every slot the rule listens on, resolve_on last
    resolve_on: CompiledMatcher | None = None
    within: Window | None = None  # the form's `within`, for what every kind reads (realert)

    def conditions(self) -> list[tuple[str, Condition]]:
        """The CEL values of the kind's own fields (a burst's `distinct`), by field name."""
        if self.form is None:
            return []
        return [
            (f.name, getattr(self.form, f.name))
            for f in dataclasses.fields(self.form)
            if isinstance(getattr(self.form, f.name), Condition)
        ]

    @property
    def gap(self) -> tuple[str, str]:
        """The department pair of the gap (who made the promise -> who broke it)."""
        if not self.owners:
            return ("unknown", "unknown")
        return (self.owners[0], self.owners[-1])

    @property
    def state_identity(self) -> tuple[str, str, str]:
        """What must stay the same for a reloaded rule to keep its state."""
        return (self.id, self.kind, self.key.text)

    @property
    def state_tag(self) -> str:
        """A short digest of `state_identity`, stored with the state it belongs to."""
        return hashlib.sha256("\x1f".join(self.state_identity).encode()).hexdigest()[:12]
