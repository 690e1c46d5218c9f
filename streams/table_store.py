"""The worker's Faust table as the driver's `StateStore`, with its changelog written per batch.

The driver (monitor/engine/driver.py) reads states from the table and, once a batch's alerts
are delivered, writes each state the batch changed once. Writes go straight to the table's
store, not through the table's `__setitem__` (which would queue a changelog record and update
sensors per write); `flush` then hands the last value of each key to a background task, which
sends them as one record batch per partition. The task and each send are registered with the
app's `CommitBarrier`, so input offsets are committed only after the changelog holds the states
they produced, and not at all if a send failed.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Iterable, MutableMapping, Sequence
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore
from faust.streams import current_event

from monitor.engine.stored import stored_partition
from monitor.metrics import Metrics
from streams import codecs
from streams.faust_compat import (
    ChangelogNotWritten,
    CommitBarrier,
    new_producer_like,
    partition_items,
    set_persisted_offset,
)

log = logging.getLogger("cxmon")
_M = 0x5BD1E995  # murmur2's mixing constant
_WORDS = [struct.Struct(f"<{n}I") for n in range(64)]  # keys up to 255 bytes unpacked in one


def partition_for(key: str, partitions: list[int]) -> int:
    """The keyed topic's partition for a rule key: the one Kafka's default partitioner picks."""
    return partitions[(murmur2(key.encode()) & 0x7FFFFFFF) % len(partitions)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (aiokafka's `partitioner.murmur2`, the Java client's), twice as fast:
    four bytes at a time from one `struct` unpack; the first sight of each key pays it (4% of
    a catch-up's CPU with aiokafka's)."""
    length = len(data)
    h = 0x9747B28C ^ length
    words = length >> 2
    unpack = _WORDS[words].unpack_from if words < 64 else struct.Struct(f"<{words}I").unpack_from
    for k in unpack(data):
        k = (k * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ (((k ^ (k >> 24)) * _M) & 0xFFFFFFFF)
    tail = words << 2
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


class StateTable(faust.Table[str, bytes]):
    """The state table; its changelog is written by `send_recorded`, a send at a time.

    Faust sends each table write as its own changelog record, through a buffer that wraps,
    serialises and produces the records one at a time, and stalls the consumer when a batch
    writes more than a hundred states. This table keeps the last value written to each key
    instead (None for a delete) and sends them as one record batch per partition. The
    changelog holds the same records as before, so recovery reads it unchanged.

    One send is in flight at a time, and it takes every write recorded by the time it starts:
    writes recorded while a send waits for the broker leave together in the next one, the
    last value of each key only. During a backlog the batches come faster than a produce round
    trip (0.3-1.9 s measured while the agent held the event loop); sent one round trip per
    batch, their changelog records fell seconds behind and held back every commit.

    The changelog has a producer of its own. aiokafka sends one produce request at a time to a
    broker, so on the worker's producer an alert waited behind the changelog request in flight:
    at 1,000 events/s the alerts' p90 latency was 156-283 ms (median 179) against 139-290 ms
    (median 157) with the changelog on a connection of its own, over six alternating runs of
    tests/bench/test_latency_bench.py's worker part.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Faust derives a str key's codec, `json`, which is orjson when installed: the keys of
        # non-ASCII slots would change bytes (streams/codecs.py).
        self.key_serializer = codecs.NAME
        self.value_serializer = "raw"  # the states' JSON bytes, sent as they are
        self._unsent: dict[int, dict[Any, bytes | None]] = {}
        self.barrier: CommitBarrier | None = None
        self._recorded = 0  # writes recorded so far
        self._delivered = 0  # of those, how many the broker has (in order)
        self._sending: asyncio.Task[None] | None = None  # the send in flight
        self.metrics: Metrics | None = None
        self._producer: Any = None  # the changelog's own, from start to stop

    async def on_start(self) -> None:
        await super().on_start()
        self._producer = await new_producer_like(self.app)

    async def on_stop(self) -> None:
        """The send in flight leaves before the producer closes (its stop sends what it holds)."""
        if self._sending is not None:
            await asyncio.wait([self._sending])
        if self._producer is not None:
            await self._producer.stop()
        await super().on_stop()

    def on_key_set(self, key: Any, value: Any) -> None:
        self.record(self._partition_of(key), key, value)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        self.record(self._partition_of(key), key, None)
        self._sensor_on_del(self, key)

    def record(self, partition: int, key: str, value: bytes | None) -> None:
        """Queue a write for the changelog (the store itself is written by the caller)."""
        self._unsent.setdefault(partition, {})[key] = value
        self._recorded += 1

    def _partition_of(self, key: Any) -> int:
        """The partition of the record being handled: a table key's partition (Faust's rule)."""
        partition = self.partition_for_key(key)
        if partition is None:
            raise TypeError("the state table takes its partitions from the records handled")
        return partition

    async def send_recorded(self) -> None:
        """Wait until the broker has every write recorded so far.

        Starts a send of what is recorded when none is in flight, or waits for the one in flight
        and then sends what was recorded meanwhile. Raises if a send this call waited for
        failed: the writes it carried are lost, and the caller's commit must not happen.
        """
        wanted = self._recorded
        while self._delivered < wanted:
            sending = self._sending or self._start_send()
            await asyncio.wait([sending])
            if sending.cancelled():
                raise ChangelogNotWritten("a changelog send was cancelled")
            if sending.exception() is not None:
                raise ChangelogNotWritten(f"a changelog send failed: {sending.exception()!r}")

    def _start_send(self) -> asyncio.Task[None]:
        unsent, self._unsent = self._unsent, {}
        upto = self._recorded
        sending = asyncio.ensure_future(self._send_writes(unsent))

        def sent(task: asyncio.Task[None]) -> None:  # before any waiter resumes
            self._sending = None
            if not task.cancelled() and task.exception() is None:
                self._delivered = max(self._delivered, upto)

        sending.add_done_callback(sent)
        self._sending = sending
        return sending

    def report_to(self, metrics: Metrics) -> None:
        """Count the records sent in `metrics`; its unsent-writes gauge reads this table when
        scraped."""
        self.metrics = metrics
        metrics.changelog_unsent.set_function(lambda: self._recorded - self._delivered)

    async def _send_writes(self, unsent: dict[int, dict[Any, bytes | None]]) -> None:
        producer = self._producer
        if producer is None:
            raise ChangelogNotWritten("the state table is not started: it has no producer")
        name = self.changelog_topic.get_topic_name()
        deliveries: list[asyncio.Future[Any]] = []
        for partition, writes in unsent.items():
            batch = producer.create_batch()
            for key, value in writes.items():
                raw_key = self._raw_key(key)
                if batch.append(key=raw_key, value=value, timestamp=None) is None:
                    deliveries += await self._send(producer, batch, name, partition)
                    batch = producer.create_batch()
                    if batch.append(key=raw_key, value=value, timestamp=None) is None:
                        raise ValueError(f"a state of {len(value or b'')} bytes exceeds a batch")
            deliveries += await self._send(producer, batch, name, partition)
        # The send ends when the broker has the records (or raises if it refused them).
        await asyncio.gather(*deliveries)

    def _raw_key(self, key: str) -> bytes:
        """The changelog key of a slot, as Faust serialises it with the table's `stdjson` key
        codec (tests/unit/test_table_store.py holds the two equal). Through Faust's serialiser
        it took 7% of a worker's CPU in the sweep after a backlog, where a cache of its keys
        missed."""
        return codecs.str_bytes(key)

    async def _send(
        self, producer: Any, batch: Any, topic: str, partition: int
    ) -> list[asyncio.Future[Any]]:
        count = batch.record_count()
        if not count:
            return []
        delivered: asyncio.Future[Any] = await producer.send_batch(
            batch, topic, partition=partition
        )
        delivered.add_done_callback(lambda fut: self._on_batch_sent(fut, count))
        return [delivered]

    def _on_batch_sent(self, delivered: asyncio.Future[Any], count: int) -> None:
        if delivered.cancelled():
            return
        error = delivered.exception()
        if error is not None:
            log.error("changelog batch of %d states not written: %r", count, error)
            return
        sent = delivered.result()
        if self.metrics is not None:
            self.metrics.changelog_records.inc(count)
        # What Faust's own callback does per record: RocksDB remembers how far the changelog
        # is already in the local store, so a restart replays only what came after.
        set_persisted_offset(self, sent.topic_partition, sent.offset + count - 1)


class TableStore:
    """`StateStore` over the state table. Called from the agents, inside the Faust event whose
    partition the slots belong to (RocksDB picks its partition database from that event).

    A batch's writes wait in `pending` (which reads see) until its alerts are delivered: `flush`
    hands them to a background task that awaits the alerts, then writes them to the table (after
    the batch before it has) and waits until the changelog has them. The agent takes its next
    batch meanwhile, and the commit barrier holds back the input offsets until the task is done.
    """

    def __init__(self, table: StateTable) -> None:
        self.table = table
        self.pending: dict[str, bytes | None] = {}  # written, not in the table yet
        self._writes: list[tuple[int, str, bytes | None]] = []  # since the last flush
        self._written: asyncio.Future[None] | None = None  # the last flush's, in the table

    def get(self, partition: int, slot: str) -> bytes | None:  # noqa: ARG002  # the protocol's
        if slot in self.pending:
            return self.pending[slot]
        value: bytes | None = self._stored().get(slot)
        return value

    def _stored(self) -> MutableMapping[str, bytes]:
        """The table's stored values. A `memory://` store's own dict is used directly: through
        the store's mapping methods a read miss (every key seen for the first time) raised and
        caught a KeyError, 2.5% of a worker's samples over a backlog, and each write took one
        Python call more. Other stores are used through their methods."""
        store = self.table.data
        return store.data if type(store) is MemoryStore else store

    def put(self, partition: int, slot: str, value: bytes) -> None:
        self.pending[slot] = value
        self._writes.append((partition, slot, value))

    def delete(self, partition: int, slot: str) -> None:
        exists = self.pending[slot] is not None if slot in self.pending else slot in self.table.data
        if exists:
            self.pending[slot] = None
            self._writes.append((partition, slot, None))

    def items(self, partition: int) -> Iterable[tuple[str, bytes]]:
        # Read as the indexing pass consumes it, a batch per sweep: one pass over the whole
        # table at once held the event loop 5-10 s with 200k states (RocksDB, loaded machine).
        # States waiting to be written count as written (reads see them too).
        waiting = {
            slot: raw
            for slot, raw in self.pending.items()
            if raw and stored_partition(raw) == partition
        }
        yield from waiting.items()
        for slot, raw in partition_items(self.table.data, partition):
            if raw and slot not in waiting and stored_partition(raw) == partition:
                yield slot, raw

    async def flush(self, after: Sequence[Awaitable[Any]] = ()) -> None:
        """Write this batch's states to the table and the changelog once `after` (its alerts'
        deliveries) are done, from a background task registered with the commit barrier; a
        failed delivery leaves them unwritten and stops the commit."""
        writes, self._writes = self._writes, []
        if not writes:
            return
        previous, written = self._written, asyncio.get_running_loop().create_future()
        self._written = written
        # RocksDB picks the partition's database from the current event, which the task sees
        # (it copies this context) only while something holds the event: the task does.
        task = asyncio.ensure_future(self._apply(previous, written, after, writes, current_event()))
        barrier = self.table.barrier
        if barrier is not None:
            barrier.add(task)
        else:  # no commits to hold back: write inline
            await task

    async def _apply(
        self,
        previous: asyncio.Future[None] | None,
        written: asyncio.Future[None],
        after: Sequence[Awaitable[Any]],
        writes: list[tuple[int, str, bytes | None]],
        event: Any,  # noqa: ARG002  # held for the task's lifetime (see `flush`)
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # the batch before this one is in the table
            if after:
                await asyncio.gather(*after)  # a failed alert leaves the writes out
            self._write(writes)
        finally:
            if not written.done():
                written.set_result(None)
        await self.table.send_recorded()

    def _write(self, writes: list[tuple[int, str, bytes | None]]) -> None:
        data, pending, table = self._stored(), self.pending, self.table
        for partition, slot, value in writes:
            if value is None:
                if slot in data:
                    del data[slot]
            else:
                data[slot] = value
            if slot in pending and pending[slot] is value:
                del pending[slot]
            table.record(partition, slot, value)
