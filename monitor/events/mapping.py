"""Source mappings at run time: a raw Kafka record of a mapped topic -> an `EventRef`, a skip, or a
rejection (`MappingFailed`) naming the field that failed.

Transport-free and pure: the worker, `cxmon replay --as-topic` and the mapping tests call
`evaluate` per record. Files are read and compiled by `monitor.sources`; this module holds only
what runs per record.

Cost, per record: the value is parsed once; a field that is a plain path (`value.ticket.id`) is
read from the parsed value directly; the first field that needs CEL converts the record's scope
to CEL once (a `cel.Context`), and every later CEL field of the record reuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cel

from monitor.events.codec import (
    DEFAULT_MAX_ATTRIBUTE_CHARS,
    DEFAULT_MAX_DATA_DEPTH,
    DEFAULT_MAX_DATA_ITEMS,
    DEFAULT_MAX_EVENT_BYTES,
    data_shape,
)
from monitor.events.envelope import EventRef, department_of
from monitor.events.native import CEL_ERRORS, FAILED, Choice, Flat, Native, lookup
from monitor.events.rejects import Rejected, RejectReason

SCOPE = ("value", "key", "headers", "topic", "partition", "offset", "timestamp")
TIME_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MappingFailed(Rejected):
    """A raw record its mapping could not turn into an event: the field and the error."""

    def __init__(self, field_name: str, error: str) -> None:
        super().__init__(RejectReason.MAPPING_FAILED, f"{field_name}: {error}")
        self.field = field_name
        self.error = error


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record of a mapped topic, as Kafka delivered it."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int = 0
    offset: int = 0
    timestamp: datetime | None = None  # the Kafka record time


@dataclass(frozen=True)
class CompiledField:
    """One envelope field: a plain path read in Python, or a compiled CEL program."""

    name: str
    text: str  # as written (macros not expanded): shown in errors
    program: Any = field(default=None, repr=False)
    path: tuple[str, ...] | None = None  # (variable, key, key, ...) when the text is a plain path
    # The expression with each path it reads (`value.ticket.id`, `has(value.a.b)`) replaced by
    # a variable bound from Python, so only what it reads is converted to CEL (see `Flat`).
    flat: Flat | None = field(default=None, repr=False)
    choice: Choice | None = field(default=None, repr=False)
    native: Native | None = field(default=None, repr=False)

    def value(self, scope: Mapping[str, Any], context: _Context) -> Any:
        """The field's value for one record; MappingFailed if it cannot be evaluated."""
        if self.native is not None:
            result = self.native.run(scope)
            if result is not FAILED:
                return result
        choice = self.choice
        if choice is not None:
            picked = choice.condition.run(scope)
            if picked is True or picked is False:
                found, read = lookup(scope, choice.then if picked else choice.otherwise)
                if found:
                    return read
        flat = self.flat
        if flat is not None:
            result = flat.run(scope)
            if result is not FAILED:
                return result  # else evaluate the whole expression below, to name the error
        if self.path is not None:
            return _follow(self.name, self.path, scope)
        try:
            return self.program.execute(context.get(scope))
        except KeyError as exc:
            raise MappingFailed(self.name, f"no such key {exc}") from None
        except CEL_ERRORS as exc:
            raise MappingFailed(self.name, str(exc).split(". ", 1)[0]) from None


class _Context:
    """The record's scope converted to CEL at most once, on first use."""

    __slots__ = ("built",)

    def __init__(self) -> None:
        self.built: Any = None

    def get(self, scope: Mapping[str, Any]) -> Any:
        if self.built is None:
            self.built = cel.Context(variables=dict(scope))
        return self.built


@dataclass(frozen=True)
class CompiledSource:
    """How one topic's records become events (see docs/sources.md)."""

    topic: str
    department: str | None
    id: CompiledField
    type: CompiledField
    time: CompiledField
    subject: CompiledField
    source: CompiledField | None = None
    when: CompiledField | None = None
    data: CompiledField | None = None
    time_unit: str = "s"
    file: str = ""
    line: int = 0

    @property
    def label(self) -> str:
        """The department the events are counted under before the first event is seen."""
        return self.department or "?"


@dataclass(frozen=True)
class SourceMappings:
    """Every compiled mapping, by topic."""

    by_topic: dict[str, CompiledSource] = field(default_factory=dict)

    @property
    def topics(self) -> list[str]:
        """The mapped topics, sorted."""
        return sorted(self.by_topic)

    def get(self, topic: str) -> CompiledSource | None:
        """The mapping of a topic, or None for a topic that carries CloudEvents."""
        return self.by_topic.get(topic)

    def __len__(self) -> int:
        return len(self.by_topic)

    def __iter__(self) -> Any:
        return iter(self.by_topic.values())

    @classmethod
    def of(cls, sources: Iterable[CompiledSource]) -> SourceMappings:
        """Mappings from compiled sources (the loader has rejected duplicate topics)."""
        return cls({s.topic: s for s in sources})


def _follow(name: str, path: Sequence[str], scope: Mapping[str, Any]) -> Any:
    """The value at a dotted path in the record's scope; MappingFailed naming where it stops."""
    node: Any = scope[path[0]]
    for depth, key in enumerate(path[1:], start=1):
        if not isinstance(node, dict):
            raise MappingFailed(name, f"{'.'.join(path[:depth])} is {_kind(node)}, not a map")
        if key not in node:
            raise MappingFailed(name, f"{'.'.join(path[:depth])} has no key '{key}'")
        node = node[key]
    return node


def _event_source(source: CompiledSource, scope: Mapping[str, Any], context: _Context) -> str:
    """The event's `source`: mapped (and inside the mapping's department), or the department."""
    if source.source is None:
        return source.department or ""
    event_source = _text(source.source, scope, context)
    if source.department and department_of(event_source) != source.department:
        raise MappingFailed(
            "source",
            f"'{event_source}' is not in department '{source.department}' (its first "
            "segment must be the department)",
        )
    return event_source


def evaluate(
    source: CompiledSource,
    record: RawRecord,
    *,
    max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_depth: int = DEFAULT_MAX_DATA_DEPTH,
    max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS,
    max_items: int = DEFAULT_MAX_DATA_ITEMS,
) -> EventRef | None:
    """The event a raw record maps to, or None when `when` skips it.

    Raises `MappingFailed` (a `Rejected`, reason `mapping_failed`) naming the field that failed,
    or `Rejected(too_large)` for a record over `max_bytes`.
    """
    body = record.value or b""
    if len(body) > max_bytes:
        raise Rejected(RejectReason.TOO_LARGE, f"record is {len(body)} bytes, limit {max_bytes}")
    scope = _scope(record, _parse(body))
    context = _Context()
    if source.when is not None:
        keep = source.when.value(scope, context)
        if keep is False:
            return None
        if keep is not True:
            raise MappingFailed("when", f"must be true or false, got {_kind(keep)}")
    event_source = _event_source(source, scope, context)
    event_id = _text(source.id, scope, context)
    event_type = _text(source.type, scope, context)
    moment = to_time(source.time.value(scope, context), source.time_unit)
    subject = _text(source.subject, scope, context)
    data = scope["value"] if source.data is None else source.data.value(scope, context)
    if not isinstance(data, dict):
        raise MappingFailed("data", f"must be a map (JSON object), got {_kind(data)}")
    depth, largest = data_shape(data)
    if depth > max_depth:
        raise MappingFailed("data", f"nests {depth} levels, limit {max_depth} (max_data_depth)")
    if largest > max_items:
        raise MappingFailed("data", f"holds {largest} items, limit {max_items} (max_data_items)")
    for name, text in (("id", event_id), ("source", event_source), ("type", event_type)):
        if len(text) > max_attribute_chars:
            raise MappingFailed(
                name,
                f"is {len(text)} characters, limit {max_attribute_chars} (max_attribute_chars)",
            )
    if len(subject) > max_attribute_chars:
        raise MappingFailed(
            "subject",
            f"is {len(subject)} characters, limit {max_attribute_chars} (max_attribute_chars)",
        )
    # Every field is checked above, as Event's validators would: the engine's own type, as
    # `decode_ref` gives it for a CloudEvent.
    return EventRef(event_id, event_source, event_type, moment, subject, data)


def _parse(body: bytes) -> Any:
    if not body:
        return None  # a tombstone: `when: "value != null"` skips it
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MappingFailed("value", f"not JSON: {exc}") from None
    except RecursionError:
        raise MappingFailed("value", "JSON nests too deeply to parse") from None


def _scope(record: RawRecord, value: Any) -> dict[str, Any]:
    return {
        "value": value,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "headers": {k: v.decode("utf-8", "replace") for k, v in record.headers if v is not None},
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }


def _text(compiled: CompiledField, scope: Mapping[str, Any], context: _Context) -> str:
    value = compiled.value(scope, context)
    if not isinstance(value, str):
        hint = " (convert it: string(...))" if isinstance(value, int | float) else ""
        raise MappingFailed(compiled.name, f"must be a string, got {_kind(value)}{hint}")
    if not value:
        raise MappingFailed(compiled.name, "is empty")
    return value


def to_time(value: Any, unit: str = "s") -> datetime:
    """An event time from what a `time` field gave: RFC 3339 text, a timestamp, or a number of
    `unit`s since the Unix epoch; MappingFailed otherwise."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise MappingFailed("time", "timestamp has no UTC offset")
        return value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return _EPOCH + timedelta(**{TIME_UNITS[unit]: value})
        except (OverflowError, ValueError) as exc:
            raise MappingFailed("time", f"{value} {unit} is out of range: {exc}") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise MappingFailed(
                "time", f"'{value[:64]}' is not RFC 3339 (like 2026-05-01T09:30:00Z)"
            ) from None
        if moment.tzinfo is None:
            raise MappingFailed("time", f"'{value[:64]}' has no UTC offset (add Z or +02:00)")
        return moment.astimezone(UTC)
    raise MappingFailed(
        "time", f"must be RFC 3339 text, a timestamp or a number, got {_kind(value)}"
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {dict: "a map", list: "a list", str: "a string", bool: "a boolean", bytes: "bytes"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, datetime):
        return "a timestamp"
    return type(value).__name__
