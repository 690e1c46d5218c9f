"""Per rule+key state and the findings the engine produces; state is plain data (JSON-safe)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from monitor.events import EventRef
from monitor.rules.compiled import CompiledRule


@dataclass(frozen=True, slots=True)
class Held:
    """An event remembered in a slot (a promise, an open incident, a burst member)."""

    slot: str
    event: EventRef
    tag: str | None = None  # e.g. a burst member's `distinct` value, computed once


@dataclass(frozen=True, slots=True)
class Expectation:
    """A follow-up we are waiting for: `then` must arrive for the key before `due`."""

    opened_by: EventRef
    due: datetime
    breached_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    """An alert that fired and is not resolved yet (for `resolve_on`)."""

    identity: tuple[str, ...]
    bindings: dict[str, EventRef]
    event_time: datetime


# Plain slotted classes, not pydantic models: the engine makes several of these per event and
# keeps them, and the garbage collector's full passes over pydantic's per-instance dicts and sets
# cost more than the rules themselves did. `to_json` writes what `model_dump(mode="json",
# exclude_defaults=True)` wrote, so stored state reads back across versions.
@dataclass(slots=True)
class KeyState:
    """Everything one rule remembers about one key. Empty state is deleted, not stored."""

    held: list[Held] = field(default_factory=list)
    expectations: list[Expectation] = field(default_factory=list)
    firing: list[Firing] = field(default_factory=list)
    last_fired: datetime | None = None
    seen: dict[str, datetime] = field(default_factory=dict)

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
        if len(self.held) > limit:
            dropped += len(self.held) - limit
            self.held = sorted(self.held, key=lambda h: h.event.time)[-limit:]
        if len(self.expectations) > limit:
            dropped += len(self.expectations) - limit
            self.expectations = sorted(self.expectations, key=lambda e: e.opened_by.time)[-limit:]
        if len(self.firing) > limit:
            dropped += len(self.firing) - limit
            self.firing = sorted(self.firing, key=lambda f: f.event_time)[-limit:]
        return dropped

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a table."""
        out: dict[str, Any] = {}
        if self.held:
            out["held"] = [_held_json(h) for h in self.held]
        if self.expectations:
            out["expectations"] = [_expectation_json(e) for e in self.expectations]
        if self.firing:
            out["firing"] = [
                {
                    "identity": list(f.identity),
                    "bindings": {k: ref_json(v) for k, v in f.bindings.items()},
                    "event_time": time_json(f.event_time),
                }
                for f in self.firing
            ]
        if self.last_fired is not None:
            out["last_fired"] = time_json(self.last_fired)
        if self.seen:
            out["seen"] = {k: time_json(t) for k, t in self.seen.items()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> KeyState:
        """Read back what `to_json` wrote (None -> empty state)."""
        if not data:
            return cls()
        try:
            last_fired = data.get("last_fired")
            return cls(
                held=[
                    Held(h["slot"], ref_from_json(h["event"]), h.get("tag"))
                    for h in data.get("held", ())
                ],
                expectations=[
                    Expectation(
                        ref_from_json(e["opened_by"]),
                        time_from_json(e["due"]),
                        None if e.get("breached_at") is None else time_from_json(e["breached_at"]),
                    )
                    for e in data.get("expectations", ())
                ],
                firing=[
                    Firing(
                        tuple(f["identity"]),
                        {k: ref_from_json(v) for k, v in f["bindings"].items()},
                        time_from_json(f["event_time"]),
                    )
                    for f in data.get("firing", ())
                ],
                last_fired=None if last_fired is None else time_from_json(last_fired),
                seen={k: time_from_json(t) for k, t in data.get("seen", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"stored state is malformed: {exc!r}") from None


def time_json(moment: datetime) -> str:
    """A datetime as pydantic's JSON mode writes it (`Z` for UTC)."""
    offset = moment.utcoffset()
    if offset is not None and not offset:
        return moment.replace(tzinfo=None).isoformat() + "Z"
    return to_jsonable_python(moment)  # type: ignore[no-any-return]


def time_from_json(text: str) -> datetime:
    """Read back `time_json` (RFC 3339)."""
    if type(text) is not str:
        raise TypeError(f"expected an RFC 3339 string, got {text!r}")
    return datetime.fromisoformat(text)


def ref_json(ref: EventRef) -> dict[str, Any]:
    """An event reference as stored in state (empty `data` left out)."""
    out: dict[str, Any] = {
        "id": ref.id,
        "source": ref.source,
        "type": ref.type,
        "time": time_json(ref.time),
        "subject": ref.subject,
    }
    if ref.data:
        out["data"] = to_jsonable_python(ref.data)
    return out


def ref_from_json(data: Mapping[str, Any]) -> EventRef:
    """Read back `ref_json`."""
    return EventRef(
        data["id"],
        data["source"],
        data["type"],
        time_from_json(data["time"]),
        data["subject"],
        dict(data.get("data") or {}),
    )


def _held_json(held: Held) -> dict[str, Any]:
    out = {"slot": held.slot, "event": ref_json(held.event)}
    if held.tag is not None:
        out["tag"] = held.tag
    return out


def _expectation_json(expectation: Expectation) -> dict[str, Any]:
    out = {"opened_by": ref_json(expectation.opened_by), "due": time_json(expectation.due)}
    if expectation.breached_at is not None:
        out["breached_at"] = time_json(expectation.breached_at)
    return out


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
