"""Per rule+key state and the findings the engine produces; state is plain data (JSON-safe)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from monitor.events import EventRef
from monitor.events.fast import STORED_TIME
from monitor.records import record
from monitor.rules.compiled import CompiledRule


@record
class Held:
    """An event remembered in a slot (a promise, an open incident, a burst member).

    `link` ties it to another held event by that event's key (`event_key`): a `during` rule's
    close of one open interval, or its marker that the interval already alerted. Stored as
    `slot:link` in one string, the form state had before links were typed.
    """

    slot: str
    event: EventRef
    tag: str | None = None  # e.g. a burst member's `distinct` value, computed once
    link: str | None = None
    # Its JSON as state stores it, made the first time a state holding it is written
    # (`stored.state_text`): a held entry stays in its state across many writes. Not part of
    # the value.
    stored_text: str | None = field(default=None, init=False, compare=False, repr=False)


@record
class Expectation:
    """A follow-up we are waiting for: `then` must arrive for the key before `due`."""

    opened_by: EventRef
    due: datetime
    breached_at: datetime | None = None
    # Its JSON as state stores it, made once (`stored.state_text`), as `Held.stored_text`.
    stored_text: str | None = field(default=None, init=False, compare=False, repr=False)


@record
class Firing:
    """An alert that fired and is not resolved yet (for `resolve_on`)."""

    identity: tuple[str, ...]
    bindings: dict[str, EventRef]
    event_time: datetime


# Plain slotted classes, not pydantic models: the engine makes several of these per event and
# keeps them, and the garbage collector's full passes over pydantic's per-instance dicts and sets
# cost more than the rules themselves did. For the same reason a state's lists are made when first
# used: most kinds never touch one or two of them. `to_json` writes what `model_dump(mode="json",
# exclude_defaults=True)` wrote, so stored state reads back across versions.
class KeyState:
    """Everything one rule remembers about one key. Empty state is deleted, not stored."""

    __slots__ = ("_expectations", "_firing", "_held", "last_fired", "seen")

    def __init__(
        self,
        held: list[Held] | None = None,
        expectations: list[Expectation] | None = None,
        firing: list[Firing] | None = None,
        last_fired: datetime | None = None,
        seen: dict[str, datetime] | None = None,
    ) -> None:
        self._held = held
        self._expectations = expectations
        self._firing = firing
        self.last_fired = last_fired
        self.seen: dict[str, datetime] = {} if seen is None else seen

    @property
    def held(self) -> list[Held]:
        """Events remembered in slots."""
        if self._held is None:
            self._held = []
        return self._held

    @held.setter
    def held(self, value: list[Held]) -> None:
        self._held = value

    def events_in(self, slot: str) -> list[EventRef]:
        """The events held in one slot, in the order they were held."""
        return [h.event for h in self._held or () if h.slot == slot]

    @property
    def expectations(self) -> list[Expectation]:
        """Follow-ups being waited for."""
        if self._expectations is None:
            self._expectations = []
        return self._expectations

    @expectations.setter
    def expectations(self, value: list[Expectation]) -> None:
        self._expectations = value

    @property
    def firing(self) -> list[Firing]:
        """Alerts not resolved yet."""
        if self._firing is None:
            self._firing = []
        return self._firing

    @firing.setter
    def firing(self, value: list[Firing]) -> None:
        self._firing = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyState):
            return NotImplemented
        return self.parts() == other.parts()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        held, expectations, firing, last_fired, seen = self.parts()
        return (
            f"KeyState(held={held!r}, expectations={expectations!r}, firing={firing!r}, "
            f"last_fired={last_fired!r}, seen={seen!r})"
        )

    def parts(self) -> tuple[Any, ...]:
        """(held, expectations, firing, last_fired, seen), without creating empty lists."""
        return (
            self._held or [],
            self._expectations or [],
            self._firing or [],
            self.last_fired,
            self.seen,
        )

    def expectation_counts(self) -> tuple[int, int, datetime | None]:
        """(open, breached, the deadline of the oldest breached) expectations."""
        if not self._expectations:
            return 0, 0, None
        waiting, oldest = 0, None
        for expectation in self._expectations:
            if expectation.breached_at is None:
                waiting += 1
            elif oldest is None or expectation.due < oldest:
                oldest = expectation.due
        return waiting, len(self._expectations) - waiting, oldest

    def is_empty(self) -> bool:
        """Whether nothing is left worth storing."""
        return not (self._held or self._expectations or self._firing or self.seen)

    def trim(self, limit: int) -> int:
        """Keep at most `limit` of each kind of entry, dropping the oldest; returns how many
        went. One busy or hostile customer must not grow a rule's state without bound."""
        dropped = 0
        if len(self.seen) > limit:
            newest = sorted(self.seen.items(), key=lambda item: item[1])[-limit:]
            dropped += len(self.seen) - len(newest)
            self.seen = dict(newest)
        if self._held and len(self._held) > limit:
            dropped += len(self._held) - limit
            self._held = sorted(self._held, key=lambda h: h.event.time)[-limit:]
        if self._expectations and len(self._expectations) > limit:
            dropped += len(self._expectations) - limit
            self._expectations = sorted(self._expectations, key=lambda e: e.opened_by.time)[-limit:]
        if self._firing and len(self._firing) > limit:
            dropped += len(self._firing) - limit
            self._firing = sorted(self._firing, key=lambda f: f.event_time)[-limit:]
        return dropped

    def shrink(self, limit: int) -> int:
        """Drop the oldest entries until the state's JSON takes at most about `limit` bytes;
        returns how many went. Held events keep their whole `data`, so a few large ones make a
        state (one changelog record) larger than a broker accepts."""
        entries: list[tuple[datetime, int, str, Any]] = []
        for h in self._held or []:
            entries.append((h.event.time, _size(_held_json(h)), "held", h))
        for e in self._expectations or []:
            entries.append((e.opened_by.time, _size(_expectation_json(e)), "expectation", e))
        for f in self._firing or []:
            bound = {k: ref_json(v) for k, v in f.bindings.items()}
            entries.append((f.event_time, _size(bound) + 64, "firing", f))
        for marker, at in self.seen.items():
            entries.append((at, len(marker) + 40, "seen", marker))
        total = 64 + sum(size for _, size, _, _ in entries)
        gone: dict[str, list[Any]] = {"held": [], "expectation": [], "firing": [], "seen": []}
        for _, size, kind, entry in sorted(entries, key=lambda item: item[0]):
            if total <= limit:
                break
            gone[kind].append(entry)
            total -= size
        if gone["held"]:
            self._held = [h for h in self.held if not any(h is g for g in gone["held"])]
        if gone["expectation"]:
            dropped = gone["expectation"]
            self._expectations = [e for e in self.expectations if not any(e is g for g in dropped)]
        if gone["firing"]:
            self._firing = [f for f in self.firing if not any(f is g for g in gone["firing"])]
        for marker in gone["seen"]:
            del self.seen[marker]
        return sum(len(v) for v in gone.values())

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict for a table."""
        out: dict[str, Any] = {}
        if self._held:
            out["held"] = [_held_json(h) for h in self._held]
        if self._expectations:
            out["expectations"] = [_expectation_json(e) for e in self._expectations]
        if self._firing:
            out["firing"] = [
                {
                    "identity": list(f.identity),
                    "bindings": {k: ref_json(v) for k, v in f.bindings.items()},
                    "event_time": time_json(f.event_time),
                }
                for f in self._firing
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
                held=[_held_from_json(h) for h in data["held"]] if "held" in data else None,
                expectations=[
                    Expectation(
                        ref_from_json(e["opened_by"]),
                        time_from_json(e["due"]),
                        None if e.get("breached_at") is None else time_from_json(e["breached_at"]),
                    )
                    for e in data["expectations"]
                ]
                if "expectations" in data
                else None,
                firing=[
                    Firing(
                        tuple(f["identity"]),
                        {k: ref_from_json(v) for k, v in f["bindings"].items()},
                        time_from_json(f["event_time"]),
                    )
                    for f in data["firing"]
                ]
                if "firing" in data
                else None,
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


def _size(value: Any) -> int:
    """Bytes of a JSON-safe value as compact JSON (what the table stores)."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


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
    time = data["time"]
    return EventRef(
        data["id"],
        data["source"],
        data["type"],
        time_from_json(time),
        data["subject"],
        dict(data.get("data") or {}),
        time if type(time) is str and STORED_TIME.fullmatch(time) else None,
    )


def _held_json(held: Held) -> dict[str, Any]:
    slot = held.slot if held.link is None else f"{held.slot}:{held.link}"
    out = {"slot": slot, "event": ref_json(held.event)}
    if held.tag is not None:
        out["tag"] = held.tag
    return out


def _held_from_json(data: Mapping[str, Any]) -> Held:
    slot, _, link = data["slot"].partition(":")  # slot names have no colon; links may
    return Held(slot, ref_from_json(data["event"]), data.get("tag"), link or None)


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
    raised_at: datetime | None = None  # for a resolution: when the alert it resolves fired

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
