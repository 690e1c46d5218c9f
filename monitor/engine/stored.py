"""How a rule+key state is stored: the slot it lives under and the JSON bytes it is written as.

A stored value is compact JSON `{"p": partition, "r": state tag, "s": state, "d": next due
(epoch seconds, null: never), "o": open expectations, "b": breached ones, "w": the deadline of
the oldest open breach, if any}`, with `p` first so a
store can pick one partition's values out of its bytes (`stored_partition`). The changelog holds
the same bytes, so stored states read back across versions. `state_text` writes a state's part
straight from its entries, each event's JSON made once (`EventRef.stored_text`).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _quoted
from typing import Any

import orjson
from pydantic_core import to_jsonable_python

from monitor.engine.state import Expectation, Held, KeyState, time_json
from monitor.events import EventRef

STATE_SEPARATOR = "\x1f"
_INF = math.inf
_DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def slot_of(rule_id: str, key: str) -> str:
    """The store key of one rule's state for one correlation key."""
    return f"{rule_id}{STATE_SEPARATOR}{key}"


def split_slot(slot: str) -> tuple[str, str]:
    """(rule id, key) of a store key."""
    rule_id, key = slot.split(STATE_SEPARATOR, 1)
    return rule_id, key


def read_stored(raw: bytes | None) -> dict[str, Any] | None:
    """A stored value as a dict (bytes keep a million states out of the garbage collector's
    way, and the changelog holds the same JSON)."""
    return json.loads(raw) if raw else None


def encode_stored(stored: dict[str, Any]) -> bytes:
    """The stored value for a state dict: compact JSON."""
    return _DUMPS(stored).encode()


def encode_parts(
    partition: int,
    tag: str,
    state: str,
    due: float | None,
    waiting: int,
    breached: int,
    oldest_breach: float | None = None,
) -> bytes:
    """`encode_stored` of the dict these make, without building it (byte for byte the same);
    `state` is the state's compact JSON (`state_text`); `w`, the deadline of the oldest open
    breach, only when there is one."""
    oldest = "" if oldest_breach is None else f',"w":{_number(oldest_breach)}'
    finite = type(due) is float and -_INF < due < _INF  # the usual due time, written in line
    due_text = float.__repr__(due) if finite else _number(due)
    return (
        f'{{"p":{partition},"r":{_quoted_tag(tag)},"s":{state},"d":{due_text},'
        f'"o":{waiting},"b":{breached}{oldest}}}'
    ).encode()


def _number(value: float | None) -> str:
    """`_DUMPS(value)` for a due time: `json` writes a finite float as its `repr`."""
    if value is None:
        return "null"
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    return _DUMPS(value)


@lru_cache(maxsize=1024)  # a rule set has a few dozen tags
def _quoted_tag(tag: str) -> str:
    return _DUMPS(tag)


def state_text_of(stored: dict[str, Any]) -> str:
    """The compact JSON of a stored value's state, as `encode_parts` takes it."""
    return _DUMPS(stored["s"])


def stored_partition(raw: bytes) -> int | None:
    """The partition a stored value belongs to, read from its first bytes (no JSON parse)."""
    if not raw.startswith(b'{"p":'):
        stored = read_stored(raw)
        return stored.get("p") if stored else None
    end = raw.find(b",", 5)
    try:
        return int(raw[5:end])
    except ValueError:
        return None


def state_text(state: KeyState) -> str:
    """`state.to_json()` as compact JSON (what the store holds), written straight from the
    state's entries: byte for byte what `json` makes of the dict, without building it."""
    held, expectations, firing, last_fired, seen = state.parts()
    parts = []
    if held:  # each entry's text is made once: entries are immutable and outlive many writes
        texts = [h.stored_text or _held_text(h) for h in held]
        parts.append('"held":[' + ",".join(texts) + "]")
    if expectations:
        texts = [e.stored_text or _expectation_text(e) for e in expectations]
        parts.append('"expectations":[' + ",".join(texts) + "]")
    if firing:  # rare: the generic path
        parts.append('"firing":' + _DUMPS(state.to_json()["firing"]))
    if last_fired is not None:
        parts.append('"last_fired":' + _time_text(last_fired))
    if seen:
        parts.append('"seen":{' + _seen_text(seen) + "}")
    return "{" + ",".join(parts) + "}"


def _seen_text(seen: dict[str, datetime]) -> str:
    """The `seen` map's entries, each entry's text made once (`_SEEN`): a state is written
    again at each change, with every id it has seen, and one id is often seen by several rules."""
    known = _SEEN
    entries = []
    for marker, moment in seen.items():
        made = known.get(marker)
        if made is None or made[0] is not moment:
            if len(known) >= _TEXTS_HELD:
                known.clear()
            made = known[marker] = (moment, f"{_quoted(marker)}:{_time_text(moment)}")
        entries.append(made[1])
    return ",".join(entries)


# A `seen` entry's JSON by its marker, for the moment it was made for (a marker seen again at
# another moment, by another rule or after a restart, is made again). At most 65,536 entries:
# about 11 MB, which the state bench counts (170 bytes per state over 20,000 states).
_SEEN: dict[str, tuple[datetime, str]] = {}


_TIMES: dict[datetime, str] = {}  # UTC moments' JSON: a state is written again and again
_TEXTS_HELD = 65_536  # entries `_TIMES` and `_SEEN` each keep: emptied when full


def _time_text(moment: datetime) -> str:
    if moment.tzinfo is not UTC:  # equal moments in other zones are written differently
        return _quoted(time_json(moment))
    text = _TIMES.get(moment)
    if text is None:
        text = _remember(moment, f'"{moment.isoformat()[:-6]}Z"')  # `time_json`, without a copy
    return text


def _remember(moment: datetime, text: str) -> str:
    """Keep a UTC moment's JSON in `_TIMES` (bounded: emptied when full)."""
    if len(_TIMES) >= _TEXTS_HELD:
        _TIMES.clear()
    _TIMES[moment] = text
    return text


def ref_text(ref: EventRef) -> str:
    """`ref_json(ref)` as compact JSON, made once per reference (an event's data is never
    changed once it is admitted)."""
    text = ref.stored_text
    if text is None:
        data = f',"data":{_data_text(ref.data)}' if ref.data else ""
        text = (
            f'{{"id":{_quoted(ref.id)},"source":{_quoted(ref.source)},"type":{_quoted(ref.type)},'
            f'"time":{_ref_time_text(ref)},"subject":{_quoted(ref.subject)}{data}}}'
        )
        object.__setattr__(ref, "stored_text", text)  # read-only to mypy: a cache, not a change
    return text


def _ref_time_text(ref: EventRef) -> str:
    """`_time_text(ref.time)`, from the text the time was read from when the decoder found it
    already in the stored form (`EventRef.time_text`): no `isoformat` for most events.
    Remembered for the `seen` entries of the same moment."""
    read = ref.time_text
    if read is None or ref.time.tzinfo is not UTC:
        return _time_text(ref.time)
    return _remember(ref.time, f'"{read}"')


_SCALARS = frozenset({str, int, float, bool, type(None)})
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1  # the integers orjson writes


def _data_text(data: dict[str, Any]) -> str:
    """An event's data as compact JSON, byte for byte what `json` writes (the stored layout).

    The usual data, ASCII strings, integers within 64 bits, booleans and nulls, is written by
    orjson, which writes those exactly as `json` does (1.1 µs against 3.9); a float (which the
    two format differently), other text and nested values go through `json`, and pydantic's
    conversion only for nested values (it returns JSON's scalars as they are)."""
    for key, value in data.items():
        kind = type(value)
        if kind is str:
            if not value.isascii() or "\x7f" in value:  # `json` escapes DEL, orjson does not
                break
        elif kind is int:
            if not _INT64_MIN <= value <= _UINT64_MAX:
                break
        elif kind is not bool and value is not None:
            break
        if type(key) is not str or not key.isascii() or "\x7f" in key:
            break
    else:
        return orjson.dumps(data).decode()
    if all(type(value) in _SCALARS for value in data.values()):
        return _DUMPS(data)
    return _DUMPS(to_jsonable_python(data))


def _held_text(held: Held) -> str:
    """A held entry's JSON, made once per entry (`Held.stored_text`)."""
    slot = held.slot if held.link is None else f"{held.slot}:{held.link}"
    tag = "" if held.tag is None else f',"tag":{_quoted(held.tag)}'
    text = f'{{"slot":{_quoted(slot)},"event":{ref_text(held.event)}{tag}}}'
    object.__setattr__(held, "stored_text", text)  # read-only to mypy: a cache, not a change
    return text


def _expectation_text(expectation: Expectation) -> str:
    """An expectation's JSON, made once per expectation (`Expectation.stored_text`)."""
    breached = expectation.breached_at
    late = "" if breached is None else f',"breached_at":{_time_text(breached)}'
    text = (
        f'{{"opened_by":{ref_text(expectation.opened_by)},"due":{_time_text(expectation.due)}'
        f"{late}}}"
    )
    object.__setattr__(expectation, "stored_text", text)  # as in `_held_text`
    return text
