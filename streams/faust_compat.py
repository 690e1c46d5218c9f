"""Every use of Faust's private API, in one place, for the Faust version pinned in pyproject.toml.

tests/unit/test_faust_compat.py pins the behaviour each piece relies on, so an upgrade of
faust-streaming fails there, loudly, rather than somewhere in the worker.

What is here:
- `BatchDeliveryConsumer`: Faust's aiokafka consumer, overriding `_drain_messages` (private):
  each fetched batch is delivered under one interruptible wait, and the records a topic fetched
  for one partition reach its agent as ONE Faust message (`BatchSchema` passes the record list
  through). The batch message carries the last record's offset; when the agent acks it, the
  batch's other offsets are recorded as a gap (`_gap`, private) first, so Faust's own commit
  machinery commits `last + 1` then, and nothing of the batch before.
- `CommitBarrier`: awaited in `_commit_offsets` (private) before any offset is committed; the
  state changelog registers its sends there, so offsets are never committed ahead of the
  changelog records of the states they produced, and a failed send stops the commit.
- `producer_of`: the aiokafka producer inside Faust's producer (`_ensure_producer`).
- `new_producer_like`: another aiokafka producer with the settings of Faust's (`_new_producer`).
- `set_persisted_offset`: RocksDB's record of how far the changelog is in the local store.
- `partition_items`: one partition's stored pairs, read from its own RocksDB database
  (`_db_for_partition`, `_visible_items`, `_decode_key`, `_decode_value`) as they are consumed.
- `FetchNotingThread` / `records_waiting`: the consumer thread's `_fetch_records` (private)
  notes what each fetch returned, and aiokafka's partition state (`_subscription`, its
  `position` and `highwater`) tells what waits on the broker: the deadline clock's backlog test.
- `patch_consumer_thread`: the embedded broker's workarounds (streams/tansu.py) hook Faust's
  consumer thread (`_highwaters`, `_create_consumer`, aiokafka's `_fetch_max_wait_ms`).

Overrides of private methods stay with the subclass that makes them, and are pinned in the same
test: `CxApp._new_transport` (installs `Transport` below) and `DeadlineWorker._schedule_shutdown`
with mode's `_signal_stop_time` (streams/app.py), `CachedPrometheusMonitor` reading `_metrics`
and `_stream_label` (streams/sensors.py), `StateTable` calling `_sensor_on_set`/`_sensor_on_del`
(streams/table_store.py). Lifecycle moments use signals, not private hooks (`CxApp.on_ready`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, server_list
from faust.types import TP, AppT, Message
from faust.types.tuples import ConsumerMessage
from mode import Service

log = logging.getLogger("cxmon")
YIELD_EVERY = 100  # messages delivered before the loop lets other tasks run, as Faust does


class ChangelogNotWritten(RuntimeError):
    """A state changelog send failed: the offsets of the input behind it must not be committed."""


class CommitBarrier:
    """Sends that must be delivered before Faust commits input offsets.

    `add` is called as a send is queued; `wait` by the consumer right before it commits. A send
    that failed raises `ChangelogNotWritten` from `wait`, which stops that commit (Faust's
    commit task then crashes the worker, which restarts from the last committed offsets and
    replays; duplicate events are dropped by source and id).
    """

    def __init__(self) -> None:
        self._pending: list[Awaitable[Any]] = []

    def add(self, delivery: Awaitable[Any]) -> None:
        """Hold back the next commit until `delivery` completes."""
        self._pending.append(delivery)

    async def wait(self) -> None:
        """Wait for the sends registered so far; raise if one failed.

        Only those: the offsets about to be committed are of batches already handled, whose
        sends were all registered before their offsets became committable. Sends registered
        meanwhile belong to later batches and hold back the next commit; waiting for them too
        starved commits for as long as writes kept coming (63 s while a reload swept 200k
        states).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        results = await asyncio.gather(*pending, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise ChangelogNotWritten(
                f"{len(failed)} of {len(results)} changelog sends failed: {failed[0]!r}"
            )


class BatchSchema(faust.Schema):  # type: ignore[type-arg]
    """The value of a batch message is the list of aiokafka records it stands for."""

    def loads_key(self, app: AppT, message: Message, **_: Any) -> Any:  # noqa: ARG002  # Faust's signature
        return None

    def loads_value(self, app: AppT, message: Message, **_: Any) -> Any:  # noqa: ARG002
        return message.value


class BatchDeliveryConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer: one interruptible wait per fetch, one message per batch.

    Its consumer thread notes, as each fetch returns, the last offset fetched and the fetch
    position of every partition (`FetchNotingThread`), so the worker can tell records fetched
    and not handled yet (`records_waiting`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetched: dict[Any, int] = {}  # the last offset fetched, per partition
        self.noted_position: dict[Any, int] = {}  # the fetch position as a fetch returned

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FetchNotingThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                messages, generation = await self._fetch()
                await self.sleep(0)
                if messages and not self.should_stop:
                    await self.wait_first(
                        self._deliver(messages, generation), self.suspend_flow.wait()
                    )
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _fetch(self) -> tuple[list[tuple[TP, Message]], int]:
        """One fetch as Faust's `getmany` makes it, as messages: one per partition for batch
        topics, one per record for the others (in Faust's round-robin order)."""
        records, active = await self._wait_next_records(1.0)
        generation = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return [], generation
        if not self.flow_active:
            try:  # as `getmany` does when flow stopped while it fetched
                await self.perform_seek()
            except Exception as exc:  # Faust logs and carries on here too
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return [], generation
        batch_topics: frozenset[str] = getattr(self.app, "batch_topics", frozenset())
        wanted = {
            tp: recs
            for tp, recs in records.items()
            if active is None or tp in active or tp in self._buffered_partitions
        }
        messages: list[tuple[TP, Message]] = []
        others = {}
        for tp, recs in wanted.items():
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batch_topics and recs:
                messages.append((tp, self._batch_message(tp, recs, generation)))
            else:
                others[tp] = recs
        if others:
            to_message = self._to_message
            messages.extend((tp, to_message(tp, r)) for tp, r in self.scheduler.iterate(others))
        return messages, generation

    @staticmethod
    def _batch_message(tp: TP, records: Sequence[Any], generation: int) -> ConsumerMessage:
        last = records[-1]
        return ConsumerMessage(
            last.topic,
            last.partition,
            last.offset,
            None if last.timestamp is None else last.timestamp / 1000.0,  # type: ignore[arg-type]
            last.timestamp_type,
            [],
            None,
            list(records),  # type: ignore[arg-type]  # what BatchSchema passes through
            None,
            0,
            sum(r.serialized_value_size for r in records),
            tp,
            generation_id=generation,
        )

    async def _deliver(self, messages: list[tuple[TP, Message]], generation: int) -> None:
        """Faust's per-record step (gap tracking, commit every n, callback, read offset) for
        each message of one fetch, with `getmany`'s flow and generation checks."""
        callback = self.callback
        read_offset = self._read_offset
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        for tp, message in messages:
            if not self.flow_active or self.app.consumer_generation_id != generation:
                return  # a rebalance began: Faust seeks back to the committed offsets
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is None or offset >= r_offset:
                first = message.value[0].offset if isinstance(message.value, list) else offset
                gap = first - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, first - 1)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                await callback(message)
                read_offset[tp] = offset

    def ack(self, message: Message) -> bool:
        """Faust's ack; for a batch message, its records before the last count as acked too.

        They are added here, not at delivery, so an offset of a batch still being handled is
        never committable, whatever else is acked meanwhile.
        """
        records = message.value
        if isinstance(records, list) and not message.acked and len(records) > 1:
            first, committed = records[0].offset, self._committed_offset[message.tp]
            if committed is not None:
                first = max(first, committed)
            if first < message.offset:
                self._gap[message.tp].addi(first, message.offset)  # [first, last)
        return super().ack(message)

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        barrier: CommitBarrier | None = getattr(self.app, "commit_barrier", None)
        if barrier is not None:
            await barrier.wait()
        return await super()._commit_offsets(offsets, start_new_transaction=start_new_transaction)


class FetchNotingThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, noting what each fetch returned before anything else sees it."""

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        # Here, in the thread, no record is in transit yet: a fetch moves the position first,
        # so a position past the noted one means records on their way to the worker.
        owner: Any = self.consumer
        for tp, fetched in records.items():
            if fetched:
                owner.fetched[tp] = fetched[-1].offset
        for tp in consumer.assignment():
            state = _partition_state(consumer, tp)
            if state is not None and state.has_valid_position:
                owner.noted_position[tp] = state.position
        return records


def _partition_state(consumer: Any, tp: Any) -> Any:
    """aiokafka's state of an assigned partition (fetch position, highwater), or None."""
    subscription = consumer._subscription.subscription
    return subscription.assignment.state_value(tp) if subscription is not None else None


def records_waiting(consumer: Any, tp: Any, handled: int | None) -> bool | None:
    """Whether input partition `tp` holds records the worker has not handled: on the broker past
    the fetch position, fetched and on their way, or fetched and not handled yet (`handled`: the
    last offset handled, None: none). None while not known: before the partition's first fetch,
    or once it is no longer assigned. With Faust's own consumer (which notes nothing), only
    what is on the broker past the fetch position counts."""
    aio = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    state = _partition_state(aio, tp) if aio is not None else None
    if state is None or state.highwater is None or not state.has_valid_position:
        return None
    if state.position < state.highwater:
        return True
    noted: dict[Any, int] | None = getattr(consumer, "noted_position", None)
    if noted is None:  # Faust's own consumer
        return False
    if state.position != noted.get(tp):
        return True  # the thread has fetched records it has not noted yet
    fetched = consumer.fetched.get(tp)
    return fetched is not None and (handled is None or handled < fetched)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the batch-delivering consumer."""

    Consumer = BatchDeliveryConsumer


def producer_of(app: Any) -> Any:
    """The started aiokafka producer inside Faust's producer."""
    return app.producer._ensure_producer()


async def new_producer_like(app: Any) -> Any:
    """A started aiokafka producer with the settings Faust gives its own (brokers, security,
    acks, linger, batch size), on a connection of its own: aiokafka keeps one produce request
    in flight per broker per producer, so requests of one never queue behind the other's."""
    producer = app.producer._new_producer()
    await producer.start()
    return producer


def set_persisted_offset(table: Any, tp: Any, offset: int) -> None:
    """Tell the table's store how far the changelog is written (RocksDB resumes from there)."""
    table.data.set_persisted_offset(tp, offset)


def partition_items(store: Any, partition: int) -> Iterator[tuple[Any, Any]]:
    """The (key, value) pairs a table's store holds, read as they are consumed: from the
    partition's own database for RocksDB, so a pass over 200k states can be spread over many
    calls; from a copy of the whole table for the in-memory store (a dict, copied at C speed;
    the caller picks the partition's values out)."""
    db_for = getattr(store, "_db_for_partition", None)
    if db_for is None:
        return iter(list(store.items()))
    return _rocksdb_items(store, db_for(partition))


def _rocksdb_items(store: Any, db: Any) -> Iterator[tuple[Any, Any]]:
    for key, value in store._visible_items(db):
        yield store._decode_key(key), store._decode_value(value)


def batch_topics(topics: Iterable[Any]) -> frozenset[str]:
    """The names of topics whose agents take one message per fetched partition batch."""
    return frozenset(t.get_topic_name() for t in topics)


EndOffsets = Callable[[list[str], Mapping[Any, int]], Awaitable[Mapping[Any, int]]]
_HIGHWATERS = AIOKafkaConsumerThread._highwaters
_CREATE_CONSUMER = AIOKafkaConsumerThread._create_consumer


def patch_consumer_thread(correct: EndOffsets, fetch_max_wait_ms: int) -> None:
    """Every Faust consumer in this process: end offsets passed through `correct` (outside a
    transaction), and fetches that wait at most `fetch_max_wait_ms` for records."""

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        reported = await _HIGHWATERS(self, partitions)
        if self.consumer.in_transaction:
            return reported
        transport = self.consumer.transport
        return await correct(server_list(transport.url, transport.default_port), reported)

    def _create_consumer(self: Any, loop: Any) -> Any:
        consumer = _CREATE_CONSUMER(self, loop=loop)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
        return consumer

    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
    AIOKafkaConsumerThread._create_consumer = _create_consumer  # type: ignore[method-assign]
