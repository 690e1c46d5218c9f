"""Metrics computed at scrape time or kept apart: ages, lags, pending deliveries, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from monitor.build import engine_form
from monitor.engine.due import DueIndex
from monitor.metrics import Metrics, NotifierMetrics
from monitor.rules import load_rules
from tests.unit.test_metrics import RULES

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
RULE = "sales-onboarding-handoff-stalled"


def _clock() -> float:
    return NOW.timestamp()


def _worker() -> tuple[CollectorRegistry, Metrics]:
    registry = CollectorRegistry()
    metrics = Metrics(registry, live_horizon_s=900, clock=_clock)
    metrics.init_rules(load_rules([RULES]).rules)
    return registry, metrics


def test_history_stays_out_of_the_detection_latency_histogram() -> None:
    registry, metrics = _worker()
    metrics.observe_detection("burst", NOW - timedelta(milliseconds=40), NOW)
    metrics.observe_detection("burst", NOW - timedelta(days=3), NOW)  # a backfill
    count = registry.get_sample_value("cxmon_detection_latency_seconds_count", {"kind": "burst"})
    total = registry.get_sample_value("cxmon_detection_latency_seconds_sum", {"kind": "burst"})
    history = registry.get_sample_value("cxmon_historical_detections_total", {"kind": "burst"})
    assert (count, history) == (1, 1)
    assert total is not None and abs(total - 0.04) < 1e-9


def test_oldest_open_breach_age_is_measured_at_scrape_time() -> None:
    registry, metrics = _worker()
    age = "cxmon_oldest_open_breach_age_seconds"
    assert registry.get_sample_value(age, {"rule": RULE}) == 0  # every stalled rule, from start
    index = DueIndex()
    index.set("a", 0, RULE, 0.0, 0, 1, oldest_breach=(NOW - timedelta(hours=5)).timestamp())
    index.set("b", 0, RULE, 0.0, 0, 1, oldest_breach=(NOW - timedelta(hours=2)).timestamp())
    metrics.set_oldest_breaches(index.oldest_breaches())
    assert registry.get_sample_value(age, {"rule": RULE}) == 5 * 3600
    index.remove("a")
    metrics.set_oldest_breaches(index.oldest_breaches())
    assert registry.get_sample_value(age, {"rule": RULE}) == 2 * 3600
    index.clear()
    metrics.set_oldest_breaches(index.oldest_breaches())
    assert registry.get_sample_value(age, {"rule": RULE}) == 0


def test_watermark_lag_per_partition() -> None:
    registry, metrics = _worker()
    marks = {0: NOW - timedelta(seconds=30), 3: NOW - timedelta(hours=1)}
    metrics.watch_watermarks(lambda: marks)
    lag = "cxmon_watermark_lag_seconds"
    assert registry.get_sample_value(lag, {"partition": "0"}) == 30
    assert registry.get_sample_value(lag, {"partition": "3"}) == 3600
    del marks[3]
    assert registry.get_sample_value(lag, {"partition": "3"}) is None


def test_a_successful_reload_stamps_its_time_and_a_failed_one_does_not() -> None:
    registry, metrics = _worker()
    stamp = "cxmon_rules_last_reload_timestamp_seconds"
    metrics.rules_loaded_outcome(success=True)
    assert registry.get_sample_value(stamp) == NOW.timestamp()
    metrics.clock = lambda: NOW.timestamp() + 60
    metrics.rules_loaded_outcome(success=False)
    assert registry.get_sample_value(stamp) == NOW.timestamp()


def test_pending_deliveries_count_until_acked_with_the_oldest_age() -> None:
    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    metrics.pending.clock = _clock
    acked: list[str] = []
    first = metrics.pending.track(NOW - timedelta(minutes=20), lambda: acked.append("first"))
    metrics.pending.track(NOW - timedelta(minutes=1), lambda: acked.append("second"))
    depth, age = "cxmon_notifier_pending_alerts", "cxmon_notifier_oldest_pending_alert_age_seconds"
    assert registry.get_sample_value(depth) == 2
    assert registry.get_sample_value(age) == 20 * 60
    first()
    assert acked == ["first"]
    assert registry.get_sample_value(depth) == 1
    assert registry.get_sample_value(age) == 60


def test_both_processes_expose_process_metrics_and_build_info() -> None:
    for component, build in (("worker", Metrics), ("notifier", NotifierMetrics)):
        registry = CollectorRegistry()
        build(registry)
        assert registry.get_sample_value("process_start_time_seconds")
        assert registry.get_sample_value("process_resident_memory_bytes")
        info = [
            s.labels for f in registry.collect() for s in f.samples if s.name == "cxmon_build_info"
        ]
        assert [labels["component"] for labels in info] == [component]
        assert [labels["engine"] for labels in info] == [engine_form()]


def test_delivery_latency_buckets_reach_past_the_retry_horizon() -> None:
    registry = CollectorRegistry()
    NotifierMetrics(registry).delivery_latency.labels(receiver="team").observe(3000)
    bucket = "cxmon_alert_delivery_latency_seconds_bucket"
    assert registry.get_sample_value(bucket, {"receiver": "team", "le": "1800.0"}) == 0
    assert registry.get_sample_value(bucket, {"receiver": "team", "le": "3600.0"}) == 1
