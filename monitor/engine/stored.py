"""How a rule+key state is stored: the slot it lives under and the JSON bytes it is written as.

A stored value is compact JSON `{"p": partition, "r": state tag, "s": state, "d": next due
(epoch seconds, null: never), "o": open expectations, "b": breached ones, "w": the deadline of
the oldest open breach, if any}`, with `p` first so a
store can pick one partition's values out of its bytes (`stored_partition`). The changelog holds
the same bytes, so stored states read back across versions.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

STATE_SEPARATOR = "\x1f"
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
    return (
        f'{{"p":{partition},"r":{_quoted_tag(tag)},"s":{state},"d":{_number(due)},'
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
