"""How the detect agent's states sit in the changelogged Faust table: the slot a rule+key state
is stored under, the JSON bytes it is stored as, and the partition it belongs to."""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.streams import _current_event  # how Faust knows the record an agent is on

log = logging.getLogger("cxmon")
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


class StateTable(faust.Table[str, bytes]):
    """The state table, with its changelog written once per batch rather than once per write.

    Faust sends each table write as its own changelog record, through a buffer that wraps,
    serialises and produces the records one at a time: about a fifth of the worker's time, and
    when a batch writes more than a hundred states the buffer stalls the consumer until it has
    caught up. This table keeps the last value written to each key instead (None for a delete)
    and `flush_changelog`, which the agents call when they finish a batch, sends them as one
    record batch per partition. The changelog holds the same records as before, so recovery
    reads it unchanged, and Faust flushes the producer before it commits input offsets, so no
    input is committed before the states it produced are in the changelog.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: dict[int, dict[Any, bytes | None]] = {}

    def on_key_set(self, key: Any, value: Any) -> None:
        self._unsent.setdefault(self._partition_of(key), {})[key] = value
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        self._unsent.setdefault(self._partition_of(key), {})[key] = None
        self._sensor_on_del(self, key)

    def _partition_of(self, key: Any) -> int:
        """The partition of the record being handled: a table key's partition (Faust's rule)."""
        partition = self.partition_for_key(key)
        if partition is None:
            raise TypeError("the state table takes its partitions from the records handled")
        return partition

    async def flush_changelog(self) -> None:
        """Send the writes since the last flush: the last value of each key, in batches."""
        if not self._unsent:
            return
        unsent, self._unsent = self._unsent, {}
        producer = self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        topic = self.changelog_topic
        name = topic.get_topic_name()
        for partition, writes in unsent.items():
            batch = producer.create_batch()
            for key, value in writes.items():
                raw_key, _ = topic.prepare_key(key, self.key_serializer)
                raw = (
                    None if value is None else topic.prepare_value(value, self.value_serializer)[0]
                )
                if batch.append(key=raw_key, value=raw, timestamp=None) is None:
                    await self._send(producer, batch, name, partition)
                    batch = producer.create_batch()
                    if batch.append(key=raw_key, value=raw, timestamp=None) is None:
                        raise ValueError(f"a state of {len(raw or b'')} bytes exceeds a batch")
            await self._send(producer, batch, name, partition)

    async def _send(self, producer: Any, batch: Any, topic: str, partition: int) -> None:
        count = batch.record_count()
        if not count:
            return
        delivered = await producer.send_batch(batch, topic, partition=partition)
        delivered.add_done_callback(lambda fut: self._on_batch_sent(fut, count))

    def _on_batch_sent(self, delivered: asyncio.Future[Any], count: int) -> None:
        if delivered.cancelled():
            return
        error = delivered.exception()
        if error is not None:
            log.error("changelog batch of %d states not written: %r", count, error)
            return
        sent = delivered.result()
        # What Faust's own callback does per record: RocksDB remembers how far the changelog
        # is already in the local store, so a restart replays only what came after.
        self.data.set_persisted_offset(sent.topic_partition, sent.offset + count - 1)
