"""Metrics: every series a rule makes known exists at zero before the first event."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from monitor.rules import load_rules

RULES = Path(__file__).resolve().parents[2] / "rules"


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_rule_departments_and_types_start_at_zero() -> None:
    registry = CollectorRegistry()
    Metrics(registry).init_rules(load_rules([RULES]).rules)
    consumed = {"department": "billing", "type": "invoice.charged"}
    assert _value(registry, "cxmon_events_consumed_total", **consumed) == 0
    assert _value(registry, "cxmon_late_events_total", department="onboarding") == 0
    assert _value(registry, "cxmon_events_out_of_order_total", department="marketing") == 0
    assert _value(registry, "cxmon_late_events_total", department="nobody") is None


def test_stalled_rules_start_with_zero_open_handoffs_and_breaches() -> None:
    registry = CollectorRegistry()
    Metrics(registry).init_rules(load_rules([RULES]).rules)
    rule = "sales-onboarding-handoff-stalled"
    assert _value(registry, "cxmon_open_expectations", rule=rule) == 0
    assert _value(registry, "cxmon_open_breaches", rule=rule) == 0
    assert _value(registry, "cxmon_time_to_handoff_seconds_count", rule=rule) == 0
    firing = {
        "rule": rule,
        "kind": "stalled",
        "severity": "medium",
        "from_department": "sales",
        "to_department": "onboarding",
        "status": "firing",
    }
    assert _value(registry, "cxmon_conflicts_total", **firing) == 0


def test_a_failed_reload_is_counted_and_flagged_until_one_succeeds() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.rules_loaded_outcome(success=True)
    metrics.rules_loaded_outcome(success=False)
    assert _value(registry, "cxmon_rules_last_reload_successful") == 0
    assert _value(registry, "cxmon_rule_reloads_total", outcome="failure") == 1
    metrics.rules_loaded_outcome(success=True)
    assert _value(registry, "cxmon_rules_last_reload_successful") == 1
    assert _value(registry, "cxmon_rule_reloads_total", outcome="success") == 2


def _series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


def test_producers_cannot_invent_series_beyond_the_limit(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, max_event_series=3)
    metrics.init_rules(load_rules([RULES]).rules)
    rules_own = len(_series(registry, "cxmon_events_consumed_total"))
    metrics.count_consumed("billing", "invoice.charged")  # a pair a rule listens to
    for n in range(3):
        metrics.count_consumed("billing", f"invoice.kind-{n}")
    for n in range(3, 10_000):  # a producer putting an id into the type
        metrics.count_consumed("billing", f"invoice.kind-{n}")
    for n in range(10_000):  # ... and into the source
        metrics.count_consumed(f"tenant-{n}", "x")
        metrics.count_late(f"late-{n}")

    consumed = "cxmon_events_consumed_total"
    assert _value(registry, consumed, department="billing", type="invoice.charged") == 1
    assert _value(registry, consumed, department="billing", type="invoice.kind-2") == 1
    assert _value(registry, consumed, department="billing", type="invoice.kind-3") is None
    assert _value(registry, consumed, department="billing", type="other") == 9_997
    assert _value(registry, consumed, department="other", type="other") is not None
    total = sum(_value(registry, consumed, **labels) or 0 for labels in _series(registry, consumed))
    assert total == 1 + 10_000 + 10_000  # every event is counted somewhere
    assert len(_series(registry, consumed)) <= rules_own + 3 + 4  # + "other" per department
    assert len(_series(registry, "cxmon_late_events_total")) <= 3 + 1 + 6  # rule departments
    assert [r.message for r in caplog.records].count(
        "more than 3 department/event type pairs: later ones count as type 'other' "
        "in cxmon_events_consumed_total (setting max_event_series)"
    ) == 1
