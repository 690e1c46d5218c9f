"""Faust's Prometheus sensor with the per-message label lookups done once per label set.

Faust calls its sensor several times for every message and event; `PrometheusMonitor` resolves
`metric.labels(...)` on each call, which cost about a quarter of a worker's throughput. This
sensor writes the same series, from children it keeps after the first lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import PrometheusMonitor

FAUST_PREFIX = "cxmon_faust"  # Faust's sensor series: cxmon_faust_topic_partition_end_offset, ...


class CachedPrometheusMonitor(PrometheusMonitor):
    """`PrometheusMonitor` with its hot-path label children cached."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._label_children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: Any) -> Any:
        key = (id(metric), *labels)
        child = self._label_children.get(key)
        if child is None:
            child = self._label_children[key] = metric.labels(*labels)
        return child

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._child(metrics.messages_received_per_topics, tp.topic).inc()
        self._child(metrics.messages_received_per_topics_partition, tp.topic, tp.partition).set(
            offset
        )

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        label = self._label_children.get(("stream", stream))
        if label is None:
            label = self._label_children[("stream", stream)] = (
                f"stream.{self._stream_label(stream)}.events"
            )
        self._child(metrics.total_events_per_stream, label).inc()
        return state

    def _table_op(self, table: Any, operation: str) -> None:
        self._child(self._metrics.table_operations, f"table.{table.name}", operation).inc()

    def on_table_get(self, table: Any, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table_op(table, self.KEYS_RETRIEVED)

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table_op(table, self.KEYS_UPDATED)

    def on_table_del(self, table: Any, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table_op(table, self.KEYS_DELETED)

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        # Faust drops the partition-labelled children here; cached ones must go with them.
        self._label_children.clear()
        super().on_rebalance_end(app, state)


async def sample_loop_lag(observe: Callable[[float], None], every_s: float) -> None:
    """Forever: sleep `every_s` and observe how much later than that the loop woke us.

    The lag is the time some piece of work held the loop without yielding (a sweep, an
    indexing pass, a large batch): while it lasts no record is fetched, no alert is sent and
    no commit is made, though /healthz (served on its own thread) still answers.
    """
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(every_s)
        observe(max(0.0, loop.time() - before - every_s))
