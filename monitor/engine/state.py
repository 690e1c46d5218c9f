"""Per rule+key state and the findings the engine produces; state is plain data (JSON-safe)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.events import EventRef
from monitor.rules.compiled import CompiledRule


class Held(BaseModel):
    """An event remembered in a slot (a promise, an open incident, a burst member)."""

    model_config = ConfigDict(frozen=True)

    slot: str
    event: EventRef
    tag: str | None = None  # e.g. a burst member's `distinct` value, computed once


class Expectation(BaseModel):
    """A follow-up we are waiting for: `then` must arrive for the key before `due`."""

    model_config = ConfigDict(frozen=True)

    opened_by: EventRef
    due: datetime
    breached_at: datetime | None = None


class Firing(BaseModel):
    """An alert that fired and is not resolved yet (for `resolve_on`)."""

    model_config = ConfigDict(frozen=True)

    identity: tuple[str, ...]
    bindings: dict[str, EventRef]
    event_time: datetime


class KeyState(BaseModel):
    """Everything one rule remembers about one key. Empty state is deleted, not stored."""

    held: list[Held] = Field(default_factory=list)
    expectations: list[Expectation] = Field(default_factory=list)
    firing: list[Firing] = Field(default_factory=list)
    last_fired: datetime | None = None
    seen: dict[str, datetime] = Field(default_factory=dict)

    def is_empty(self) -> bool:
        """Whether nothing is left worth storing."""
        return not (self.held or self.expectations or self.firing or self.seen)

    def trim(self, limit: int) -> int:
        """Keep at most `limit` of each kind of entry, dropping the oldest; returns how many
        went. One busy or hostile customer must not grow a rule's state without bound."""
        dropped = 0
        if len(self.seen) > limit:
            newest = sorted(self.seen.items(), key=lambda item: item[1])[-limit:]
            dropped += len(self.seen) - len(newest)
            self.seen = dict(newest)
        for name, when in (
            ("held", lambda h: h.event.time),
            ("expectations", lambda e: e.opened_by.time),
            ("firing", lambda f: f.event_time),
        ):
            entries: list[Any] = getattr(self, name)
            if len(entries) > limit:
                dropped += len(entries) - limit
                setattr(self, name, sorted(entries, key=when)[-limit:])
        return dropped

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a table."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> KeyState:
        """Read back what `to_json` wrote (None -> empty state)."""
        return cls.model_validate(data) if data else cls()


@dataclass(frozen=True)
class Finding:
    """A conflict (or its resolution) the engine found, before it becomes an alert."""

    rule: CompiledRule
    key: str
    status: Literal["firing", "resolved"]
    bindings: Mapping[str, EventRef]
    identity: tuple[str, ...]
    event_time: datetime
    detected_at: datetime
    note: str | None = None
    late_by: timedelta | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def evidence(self) -> tuple[EventRef, ...]:
        """The events involved, in event-time order, once each."""
        unique = {f"{e.source}|{e.id}": e for e in self.bindings.values()}
        return tuple(sorted(unique.values(), key=lambda e: e.time))


def event_key(event: EventRef) -> str:
    """The identity of an event for de-duplication: producers retry with the same source+id."""
    return f"{event.source}|{event.id}"


def identity_of(*events: EventRef) -> tuple[str, ...]:
    """The identity of a conflict: the events that define it."""
    return tuple(event_key(e) for e in events)
