"""How the detect agent's states sit in the changelogged Faust table: the slot a rule+key state
is stored under, the JSON bytes it is stored as, and the partition it belongs to."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from faust.streams import _current_event  # how Faust knows the record an agent is on

STATE_SEPARATOR = "\x1f"
partitioner = DefaultPartitioner()


def slot_of(rule_id: str, key: str) -> str:
    """The table key of one rule's state for one correlation key."""
    return f"{rule_id}{STATE_SEPARATOR}{key}"


def split_slot(slot: str) -> tuple[str, str]:
    """(rule id, key) of a table key."""
    rule_id, key = slot.split(STATE_SEPARATOR, 1)
    return rule_id, key


def read_stored(raw: bytes | None) -> dict[str, Any] | None:
    """A table value: the JSON of the state dict (bytes keep a million states out of the
    garbage collector's way, and the changelog holds the same JSON as before)."""
    return json.loads(raw) if raw else None


def encode_stored(stored: dict[str, Any]) -> bytes:
    """The table value for a state dict: compact JSON."""
    return json.dumps(stored, separators=(",", ":")).encode()


def partition_for(key: str, partitions: list[int]) -> int:
    """The keyed topic's partition for a rule key: the one Kafka's default partitioner picks."""
    return partitioner(key.encode(), partitions, partitions)  # type: ignore[no-any-return]


@contextmanager
def current(record: Any) -> Iterator[None]:
    """Make `record` Faust's current event while the agent handles it inside a batch.

    Faust takes the partition of a table write, in the changelog and in the RocksDB store, from
    the event the stream is on; in a batch that is the batch's last record, not this one.
    """
    token = _current_event.set(weakref.ref(record))
    try:
        yield
    finally:
        _current_event.reset(token)
