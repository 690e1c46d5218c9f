"""The cached Faust sensor writes exactly the series Faust's own Prometheus sensor writes."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest

from streams.sensors import CachedPrometheusMonitor


class Owner:
    """An agent's task, as far as a sensor looks at it."""


class Stream:
    """What a sensor reads of a stream (Faust keeps weak references to streams and owners)."""

    shortlabel = "Stream: Topic: cx.events"
    task_owner = Owner()


def drive(monitor: PrometheusMonitor) -> None:
    """The calls Faust makes for messages on two topics, their events and table operations."""
    stream = Stream()
    table = SimpleNamespace(name="cx-state")
    for offset in range(5):
        for tp in (TP("cx.events", offset % 2), TP("cx.events.keyed", 3)):
            message = SimpleNamespace(time_in=None)
            monitor.on_message_in(tp, offset, message)  # type: ignore[arg-type]
            state = monitor.on_stream_event_in(tp, offset, stream, None)  # type: ignore[arg-type]
            monitor.on_table_get(table, "k")  # type: ignore[arg-type]
            monitor.on_table_set(table, "k", offset)  # type: ignore[arg-type]
            if offset % 2:
                monitor.on_table_del(table, "k")  # type: ignore[arg-type]
            monitor.on_stream_event_out(tp, offset, stream, None, state)  # type: ignore[arg-type]
            monitor.on_message_out(tp, offset, message)  # type: ignore[arg-type]


def exposition(monitor_class: type[PrometheusMonitor]) -> list[str]:
    registry = CollectorRegistry()
    monitor = monitor_class(metrics=FaustMetrics.create(registry, "cxmon_faust"))
    drive(monitor)
    lines = generate_latest(registry).decode().splitlines()
    # Latency figures differ run to run; every series, label set and count must not.
    return [
        line
        for line in lines
        if not line.startswith("#") and "runtime_ms" not in line and "_created" not in line
    ]


def test_cached_sensor_writes_the_same_series_as_faust() -> None:
    ours, faust = exposition(CachedPrometheusMonitor), exposition(PrometheusMonitor)
    assert ours == faust
    assert any(
        'messages_received_per_topic_total{topic="cx.events.keyed"} 5.0' in line for line in ours
    )
    assert any('operation="keys_deleted"' in line and line.endswith(" 4.0") for line in ours)


def test_a_rebalance_drops_cached_partition_series() -> None:
    registry = CollectorRegistry()
    monitor = CachedPrometheusMonitor(metrics=FaustMetrics.create(registry, "cxmon_faust"))
    drive(monitor)
    state = monitor.on_rebalance_start(SimpleNamespace(rebalancing_count=1))  # type: ignore[arg-type]
    monitor.on_rebalance_return(SimpleNamespace(), state)  # type: ignore[arg-type]
    monitor.on_rebalance_end(SimpleNamespace(), state)
    monitor.on_message_in(TP("cx.events", 1), 42, SimpleNamespace())
    text = generate_latest(registry).decode()
    assert 'partition="1",topic="cx.events"} 42.0' in text  # a fresh child, not a stale one
    assert 'partition="3",topic="cx.events.keyed"}' not in text  # cleared by the rebalance
