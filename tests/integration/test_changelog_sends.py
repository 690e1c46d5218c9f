"""The state table's changelog sends, against the real broker: one send in flight at a time, on
the table's own producer, taking every write recorded by the time it starts, so writes recorded
while a send waits for the broker leave together in the next one (the last value of each key),
in the order written."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from monitor.settings import Settings
from streams.app import build_topology
from streams.broker import EmbeddedBroker
from streams.faust_compat import producer_of
from streams.table_store import StateTable

pytestmark = pytest.mark.integration
SLOTS = [f"rule\x1fcust-{n}" for n in range(300)]


async def _send_while_in_flight(table: StateTable) -> int:
    """Record every slot, start a send, and while it is in flight write every slot twice more
    and ask for the changelog three times; returns how many sends the table started."""
    started = 0
    start_send = table._start_send

    def counting() -> asyncio.Task[None]:
        nonlocal started
        started += 1
        return start_send()

    table._start_send = counting  # type: ignore[method-assign]
    for slot in SLOTS:
        table.record(0, slot, b"first")
    first = asyncio.ensure_future(table.send_recorded())
    await asyncio.sleep(0)  # the send starts and waits for the broker
    assert table._sending is not None
    for value in (b"second", b"third"):
        for slot in SLOTS:
            table.record(0, slot, value)
    table.record(0, SLOTS[0], None)  # and one state deleted
    assert table.metrics is not None
    unsent = table.metrics.registry.get_sample_value("cxmon_changelog_unsent_writes")
    assert unsent == 3 * len(SLOTS) + 1  # nothing confirmed yet
    later = [asyncio.ensure_future(table.send_recorded()) for _ in range(3)]
    await asyncio.wait_for(asyncio.gather(first, *later), timeout=30)
    assert table._delivered == table._recorded == 3 * len(SLOTS) + 1
    await table.send_recorded()  # nothing recorded since: no send
    return started


def test_writes_recorded_during_a_send_leave_together_in_the_next(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = Settings(
        bootstrap_servers=broker.bootstrap,
        app_id=f"cxmon-sends-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path,
        topic_partitions=1,
    )
    topo = build_topology(settings)
    table = topo.state
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    table.report_to(metrics)
    topic = table.changelog_topic.get_topic_name()

    async def run() -> int:
        await topo.app.producer.start()
        await table.start()  # with its own producer, not the app's (alerts do not wait on it)
        try:
            assert table._producer is not None
            assert table._producer is not producer_of(topo.app)
            return await _send_while_in_flight(table)
        finally:
            await table.stop()
            await topo.app.producer.stop()

    assert asyncio.run(run()) == 2  # the three later calls shared one send
    assert metrics.changelog_records._value.get() == 2 * len(SLOTS)
    assert registry.get_sample_value("cxmon_changelog_unsent_writes") == 0

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5_000,
    )
    try:
        records = [(r.key, r.value) for r in consumer]
    finally:
        consumer.close()
    keys = [table._raw_key(slot) for slot in SLOTS]
    first = [(key, b"first") for key in keys]
    # the second and third writes of a slot leave once, with the last value
    second = [(keys[0], None)] + [(key, b"third") for key in keys[1:]]
    assert records[: len(first)] == first
    assert sorted(records[len(first) :], key=repr) == sorted(second, key=repr)
    assert len(records) == 2 * len(SLOTS)
