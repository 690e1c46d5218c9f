"""Reading a topic's retained history between two times, for `cxmon replay --topic` and `export`.

Contract:
- Each partition is read from the first record at or after `since` (Kafka's ListOffsets by
  timestamp, `offsets_for_times`) up to the last record at or before `until`, or, without
  `until`, the records the topic held when the read began. Partitions are assigned, not
  subscribed: no consumer group is joined and no offset is committed, so a backtest never
  moves a running worker's position.
- Records come out merged across partitions in record-timestamp order (what "arrival order"
  means across partitions); within a partition, in offset order.
- A partition ends at the first record stamped after the cut-off (`until`, or the moment the
  read began), or once its position passed the end offset reported at the start and a fetch
  brings nothing more: the embedded broker reports the base offset of the last record batch as
  the end (see streams/tansu.py), so the rest of that batch is still read. Records stamped
  before `since` (the start of a batch the first offset falls into) are skipped.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from monitor.errors import CxmonError
from monitor.settings import Settings
from streams.kafka_security import kafka_python_config

POLL_MS = 200


class HistoryError(CxmonError):
    """The topic cannot be read (it does not exist, or the brokers do not answer)."""


@dataclass(frozen=True)
class HistoryRecord:
    """One retained record, as the topic holds it."""

    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def as_json(self) -> dict[str, Any]:
        """The record as `--records` lines spell it: key, value, headers, timestamp."""
        return {
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "value": self.value.decode("utf-8", "replace") if self.value is not None else None,
            "headers": {k: v.decode("utf-8", "replace") for k, v in self.headers},
            "timestamp": int(self.timestamp.timestamp() * 1000),
        }


@dataclass
class TopicHistory:
    """The records of one topic between `since` and `until` (see the module docstring)."""

    bootstrap: str
    topic: str
    since: datetime
    until: datetime | None = None
    client_config: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 5.0
    starts: dict[int, int] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    _consumer: KafkaConsumer | None = None
    _cutoff: datetime | None = None

    @classmethod
    def for_settings(
        cls, settings: Settings, topic: str, since: datetime, until: datetime | None
    ) -> TopicHistory:
        """A reader with the configured brokers and security."""
        return cls(settings.bootstrap_servers, topic, since, until, kafka_python_config(settings))

    def open(self) -> TopicHistory:
        """Find each partition's first and last offset in the range; raises HistoryError."""
        self._cutoff = self.until or datetime.now(UTC)
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            **self.client_config,
        )
        self._consumer = consumer
        deadline = time.monotonic() + self.timeout_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            self.close()
            raise HistoryError(f"topic {self.topic!r} does not exist (or the brokers do not say)")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        found = consumer.offsets_for_times({tp: _ms(self.since) for tp in tps})
        for tp in tps:
            hit = found.get(tp)
            self.starts[tp.partition] = hit.offset if hit is not None else ends[tp]
            self.ends[tp.partition] = ends[tp]
        if self.until is not None:
            after = consumer.offsets_for_times({tp: _ms(self.until) + 1 for tp in tps})
            for tp in tps:
                hit = after.get(tp)
                if hit is not None:
                    self.ends[tp.partition] = min(self.ends[tp.partition], hit.offset)
        return self

    @property
    def estimate(self) -> int:
        """About how many records the range holds (the embedded broker may hold a few more)."""
        return sum(max(0, self.ends[p] - self.starts[p]) for p in self.starts)

    def records(self) -> Iterator[HistoryRecord]:
        """Every record in the range, merged across partitions by timestamp."""
        consumer = self._consumer
        if consumer is None or self._cutoff is None:
            raise HistoryError("open() the history before reading it")
        cutoff = self._cutoff
        buffers: dict[int, deque[HistoryRecord]] = {}
        live: set[int] = set()
        for partition, start in self.starts.items():
            consumer.seek(TopicPartition(self.topic, partition), start)
            buffers[partition] = deque()
            live.add(partition)
        heads: list[tuple[datetime, int, int]] = []  # (timestamp, partition, offset)
        while live or heads:
            # a partition's head may be merged only once every live partition has one
            hungry = [p for p in live if not buffers[p]]
            if hungry:
                self._fetch(consumer, hungry, buffers, live, cutoff)
                for p in hungry:
                    if buffers[p]:
                        head = buffers[p][0]
                        heapq.heappush(heads, (head.timestamp, p, head.offset))
                continue
            if not heads:
                break
            _, partition, _ = heapq.heappop(heads)
            record = buffers[partition].popleft()
            yield record
            if buffers[partition]:
                head = buffers[partition][0]
                heapq.heappush(heads, (head.timestamp, partition, head.offset))

    def _fetch(
        self,
        consumer: KafkaConsumer,
        hungry: list[int],
        buffers: dict[int, deque[HistoryRecord]],
        live: set[int],
        cutoff: datetime,
    ) -> None:
        tps = [TopicPartition(self.topic, p) for p in hungry]
        consumer.resume(*tps)
        consumer.pause(*[TopicPartition(self.topic, p) for p in live if p not in hungry])
        batches = consumer.poll(timeout_ms=POLL_MS)
        got = set()
        for tp, batch in batches.items():
            for raw in batch:
                stamp = datetime.fromtimestamp(raw.timestamp / 1000, UTC)
                if stamp > cutoff:
                    live.discard(tp.partition)
                    break
                if stamp < self.since:
                    continue  # the rest of a batch the start offset fell into
                buffers[tp.partition].append(
                    HistoryRecord(
                        tp.partition,
                        raw.offset,
                        stamp,
                        raw.key,
                        raw.value,
                        [(k, v) for k, v in raw.headers or []],
                    )
                )
                got.add(tp.partition)
        for partition in hungry:
            if partition in got:
                continue
            position = consumer.position(TopicPartition(self.topic, partition))
            if position >= self.ends[partition]:
                live.discard(partition)  # at the end and the last fetch brought nothing more

    def close(self) -> None:
        """Close the connection (nothing to commit)."""
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None

    def __enter__(self) -> TopicHistory:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
