"""A compacted topic read whole: every partition from the beginning, with no consumer group.

The notifier reads its silences and delivered-alerts topics this way, and the conflict board
reads `cx.alerts` the same way, so a restarted notifier rebuilds the same state without
touching its committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger("cxmon.notify")


class CompactedView:
    """Reads a whole topic from the beginning on every partition (no consumer group), then
    keeps following it; `caught_up` is set once the end offsets seen at start are reached."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        apply: Callable[[bytes, bytes | None], None],
        client_config: Mapping[str, Any] | None = None,
    ):
        self.bootstrap = bootstrap
        self.topic = topic
        self.apply = apply
        self.client_config = dict(client_config or {})  # security: streams.kafka_security
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
            **self.client_config,
        )
        await consumer.start()
        try:
            partitions: set[int] | None = None
            while not partitions:
                partitions = consumer.partitions_for_topic(self.topic)
                if not partitions:
                    await consumer.topics()  # refresh metadata
                    await asyncio.sleep(0.2)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        if record.key is not None:
                            self.apply(record.key, record.value)
                if not self.caught_up.is_set():
                    positions = {tp: await consumer.position(tp) for tp in tps}
                    if all(positions[tp] >= ends[tp] for tp in tps):
                        log.info("read %s to its end", self.topic)
                        self.caught_up.set()
        finally:
            await consumer.stop()
