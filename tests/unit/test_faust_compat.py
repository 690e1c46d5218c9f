"""Pins the Faust behaviour streams/faust_compat.py relies on; an upgrade that changes it fails here."""

from __future__ import annotations

import asyncio
import inspect
import logging
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from faust import Table
from faust.app.base import App
from faust.sensors.prometheus import PrometheusMonitor
from faust.stores import rocksdb as rocksdb_store
from faust.tables.base import Collection
from faust.tables.recovery import Recovery
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from intervaltree import IntervalTree
from mode import Worker
from mode.timers import Timer

from monitor.settings import Settings
from streams.app import BusyLoopNotice, new_worker
from streams.faust_compat import (
    BatchDeliveryConsumer,
    ChangelogNotWritten,
    CommitBarrier,
    records_waiting,
)

TOPIC = TP("cx.events", 0)


def test_the_faust_version_is_the_one_this_module_was_written_for() -> None:
    assert version("faust-streaming") == "0.15.3"


def test_the_private_methods_overridden_or_called_exist_with_their_signatures() -> None:
    consumer = faust_aiokafka.Consumer
    assert list(inspect.signature(consumer._drain_messages).parameters) == ["self", "fetcher"]
    assert list(inspect.signature(consumer._wait_next_records).parameters) == ["self", "timeout"]
    assert list(inspect.signature(consumer._add_gap).parameters) == [
        "self",
        "tp",
        "offset_from",
        "offset_to",
    ]
    assert list(inspect.signature(consumer._commit_offsets).parameters) == [
        "self",
        "offsets",
        "start_new_transaction",
    ]
    assert callable(consumer._to_message) and hasattr(faust_consumer, "CONSUMER_FETCHING")
    thread = faust_aiokafka.AIOKafkaConsumerThread
    assert list(inspect.signature(thread._highwaters).parameters) == ["self", "partitions"]
    assert list(inspect.signature(thread._create_consumer).parameters) == ["self", "loop"]
    assert list(inspect.signature(thread._fetch_records).parameters) == [
        "self",
        "consumer",
        "active_partitions",
        "timeout",
        "max_records",
    ]
    assert list(inspect.signature(consumer._new_consumer_thread).parameters) == ["self"]
    assert BatchDeliveryConsumer.__mro__[1] is consumer
    params = list(inspect.signature(ConsumerMessage.__init__).parameters)
    assert params[1:13] == [
        "topic",
        "partition",
        "offset",
        "timestamp",
        "timestamp_type",
        "headers",
        "key",
        "value",
        "checksum",
        "serialized_key_size",
        "serialized_value_size",
        "tp",
    ]


def test_the_private_names_the_subclasses_elsewhere_override_or_call_exist() -> None:
    """Overrides that stay with their classes (listed in streams/faust_compat.py's docstring):
    CxApp and DeadlineWorker (streams/app.py), CachedPrometheusMonitor (streams/sensors.py),
    StateTable (streams/table_store.py)."""
    assert list(inspect.signature(App._new_transport).parameters) == ["self"]
    assert list(inspect.signature(Worker._schedule_shutdown).parameters) == ["self", "signal"]
    assert Worker._signal_stop_time is None
    assert "self._signal_stop_time = " in inspect.getsource(Worker._schedule_shutdown)
    assert "self._metrics = metrics" in inspect.getsource(PrometheusMonitor.__init__)
    assert list(inspect.signature(PrometheusMonitor._stream_label).parameters) == [
        "self",
        "stream",
    ]
    collection = inspect.getsource(Collection.__init__)
    assert "self._sensor_on_set = self.app.sensors.on_table_set" in collection
    assert "self._sensor_on_del = self.app.sensors.on_table_del" in collection
    assert "self._sensor_on_set(self, key, value)" in inspect.getsource(Table.on_key_set)
    assert "self._sensor_on_del(self, key)" in inspect.getsource(Table.on_key_del)


def test_a_producer_like_fausts_gets_the_settings_faust_gives_its_own() -> None:
    """`new_producer_like` (the state changelog's producer) builds it with `_new_producer`."""
    assert list(inspect.signature(faust_aiokafka.Producer._new_producer).parameters) == [
        "self",
        "transactional_id",
    ]
    app = App("pin-producer", broker="kafka://127.0.0.1:1", producer_max_batch_size=123_456)

    async def made() -> Any:
        faust_producer: Any = app.producer
        return faust_producer._new_producer()

    producer = asyncio.run(made())
    assert producer._max_request_size == app.conf.producer_max_request_size
    assert producer._message_accumulator._batch_size == 123_456
    assert producer.client._bootstrap_servers == ["127.0.0.1:1"]


def test_aiokafka_keeps_the_fetch_wait_where_the_patch_sets_it() -> None:
    async def made() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1234)

    made_consumer = asyncio.run(made())
    assert made_consumer._fetch_max_wait_ms == 1234


def test_faust_signals_fire_at_other_moments_than_the_apps_ready_and_rebalancing() -> None:
    """Why streams/app.py sends its own `on_ready` and `on_rebalance_started` from
    `on_rebalance_end`/`on_rebalance_start` rather than using Faust's signals: in both recovery
    paths `on_rebalance_complete` is sent before the partitions are resumed and before a
    generation check that returns early (no "Worker ready" then); `on_rebalance_end` is called
    last. The rebalance listener calls `on_rebalance_start` synchronously, before the revoke
    coroutine that sends `on_partitions_revoked` once the agents are drained."""
    for method in (Recovery._resume_streams, Recovery.on_recovery_completed):
        source = inspect.getsource(method)
        complete = source.index("on_rebalance_complete.send()")
        stale = source.index("consumer_generation_id != generation_id")
        resume = source.index("consumer.resume_partitions(")
        end = source.index("on_rebalance_end()")
        assert complete < stale < resume < end, method
        assert source.index('"Worker ready"') > end
    listener = inspect.getsource(faust_aiokafka.ConsumerRebalanceListener.on_partitions_revoked)
    assert listener.index("app.on_rebalance_start()") < listener.index(
        "thread.on_partitions_revoked("
    )
    revoked = inspect.getsource(App._on_partitions_revoked)
    assert revoked.index("_consumer_wait_empty") < revoked.index("on_partitions_revoked.send")


def offsets_state(committed: int | None) -> Any:
    """What `Consumer._new_offset` reads: acked offsets, gaps and the committed offset."""
    return SimpleNamespace(
        _acked={TOPIC: []},
        _acked_index={TOPIC: set()},
        _gap={TOPIC: IntervalTree()},
        _committed_offset={TOPIC: committed},
    )


def ack_batch(state: Any, first: int, last: int) -> None:
    """What `BatchDeliveryConsumer.ack` does for a batch `first..last`: the gap, then the ack."""
    state._gap[TOPIC].addi(first, last)
    state._acked[TOPIC].append(last)


def commit(state: Any) -> int | None:
    """`_new_offset`, and what a commit then records."""
    offset = faust_consumer.Consumer._new_offset(state, TOPIC)
    if offset is not None:
        state._committed_offset[TOPIC] = offset
    return offset


def test_a_batch_acked_as_its_last_offset_commits_last_plus_one() -> None:
    state = offsets_state(committed=100)
    ack_batch(state, 100, 150)
    assert commit(state) == 151
    assert commit(state) is None  # the next batch, 151..200, is not acked yet
    ack_batch(state, 151, 200)
    assert commit(state) == 201


def test_an_unacked_batch_holds_back_the_commit_of_a_later_one() -> None:
    state = offsets_state(committed=100)
    ack_batch(state, 151, 200)  # acked while batch 100..150 is still being handled
    assert commit(state) is None
    ack_batch(state, 100, 150)
    assert commit(state) == 201


def test_the_commit_barrier_raises_when_a_send_failed() -> None:
    async def scenario() -> None:
        barrier = CommitBarrier()
        loop = asyncio.get_running_loop()
        ok, failed = loop.create_future(), loop.create_future()
        ok.set_result(None)
        failed.set_exception(OSError("broker gone"))
        barrier.add(ok)
        await barrier.wait()
        barrier.add(failed)
        with pytest.raises(ChangelogNotWritten, match="broker gone"):
            await barrier.wait()
        await barrier.wait()  # reported once; later commits wait for later sends only

    asyncio.run(scenario())


def test_the_commit_barrier_waits_for_earlier_sends_only() -> None:
    """A commit waits for the sends registered before it, not for those that keep coming
    while it waits: a reload sweeping 200k states starved commits for 63 s that way."""

    async def scenario() -> None:
        barrier = CommitBarrier()
        loop = asyncio.get_running_loop()
        earlier, later = loop.create_future(), loop.create_future()
        barrier.add(earlier)

        async def keep_sending() -> None:
            await asyncio.sleep(0)
            barrier.add(later)  # a later batch's send, never done during this commit
            earlier.set_result(None)

        sending = asyncio.create_task(keep_sending())
        await asyncio.wait_for(barrier.wait(), timeout=1)
        await sending
        later.set_exception(OSError("refused"))
        with pytest.raises(ChangelogNotWritten):  # the next commit waits for it
            await barrier.wait()

    asyncio.run(scenario())


def test_the_rocksdb_store_reads_a_partition_as_partition_items_does() -> None:
    store = rocksdb_store.Store
    assert list(inspect.signature(store._db_for_partition).parameters) == ["self", "partition"]
    assert list(inspect.signature(store._visible_items).parameters) == ["self", "db"]
    assert callable(store._decode_key) and callable(store._decode_value)


def test_records_waiting_reads_aiokafkas_partition_state() -> None:
    """What the deadline clock asks of an input partition, over aiokafka's own subscription
    state: unknown before the first fetch; waiting while the broker holds records past the
    fetch position, while fetched records are not noted yet, or noted and not handled."""

    async def check() -> None:
        from aiokafka.consumer.subscription_state import SubscriptionState
        from aiokafka.structs import TopicPartition

        subscription = SubscriptionState()
        tp = TopicPartition("cx.events", 0)
        subscription.assign_from_user({tp})
        aio = SimpleNamespace(_subscription=subscription)
        ours = SimpleNamespace(
            _thread=SimpleNamespace(_consumer=aio), fetched={}, noted_position={}
        )
        fausts = SimpleNamespace(_thread=SimpleNamespace(_consumer=aio))
        assert records_waiting(ours, tp, None) is None  # no fetch yet: no highwater
        state = subscription.subscription.assignment.state_value(tp)
        state.seek(5)
        state.highwater = 10
        assert records_waiting(ours, tp, None) is True  # 5..9 on the broker
        assert records_waiting(fausts, tp, None) is True
        state.seek(10)  # fetched 5..9, the thread has not noted it yet
        assert records_waiting(ours, tp, None) is True
        assert records_waiting(fausts, tp, None) is False  # Faust's consumer notes nothing
        ours.fetched[tp], ours.noted_position[tp] = 9, 10
        assert records_waiting(ours, tp, 7) is True  # 8 and 9 not handled
        assert records_waiting(ours, tp, 9) is False
        assert records_waiting(ours, TopicPartition("cx.events", 1), 9) is None  # not assigned

    asyncio.run(check())


def _overlap(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """A mode timer whose run took 2 s of its 1 s interval, with the root logger at `level`."""
    now = [0.0]
    timer = Timer(1.0, name="tick", clock=lambda: now[0])
    with caplog.at_level(level):
        timer.tick()  # the first wake-up
        now[0] += 1.0  # slept its second
        timer.on_before_yield()
        now[0] += 2.0  # ran for two
        timer.tick()
    return [
        r for r in caplog.records if r.name == "mode.timers" and "overlapping" in r.getMessage()
    ]


def test_a_busy_loop_is_told_at_info_not_as_a_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """mode's "Timer ... is overlapping" (its text is what the filter looks for) goes out at
    INFO once `new_worker` has made a worker, so a worker at the default level logs no warning
    for a catch-up keeping it busy; a second worker does not add the filter twice."""
    settings = Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    app = App("pin-busy-loop", broker="kafka://127.0.0.1:1")
    new_worker(app, settings)
    new_worker(app, settings)
    filters = logging.getLogger("mode.timers").filters
    assert [type(f) for f in filters].count(BusyLoopNotice) == 1
    assert _overlap(caplog, logging.WARNING) == []
    caplog.clear()
    (record,) = _overlap(caplog, logging.INFO)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")
    assert "tick is overlapping" in record.getMessage()
