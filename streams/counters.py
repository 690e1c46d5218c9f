"""What the admission and the engine counted during a batch, moved into the worker's metrics.

The engine counts in plain dicts (no Prometheus in `monitor.engine`); the worker drains them
after each batch and sweep.
"""

from __future__ import annotations

from monitor.engine import Ruleset
from monitor.engine.driver import Admission, Driver
from monitor.engine.kinds import KINDS
from monitor.metrics import Metrics
from monitor.rules.templates import render_failures


def drain_counters(admission: Admission, ruleset: Ruleset, metrics: Metrics) -> None:
    """Move what the admission and the engine counted during a batch into the metrics."""
    for (department, type_), count in admission.consumed.items():
        metrics.count_consumed(department, type_, count)
    admission.consumed.clear()
    for department, count in admission.late.items():
        metrics.count_late(department, count)
    admission.late.clear()
    for department, count in admission.out_of_order.items():
        metrics.count_out_of_order(department, count)
    admission.out_of_order.clear()
    for rule_id, count in ruleset.eval_errors.items():
        metrics.rule_eval_errors.labels(rule=rule_id).inc(count)
    ruleset.eval_errors.clear()
    for rule_id, count in render_failures.items():
        metrics.message_render_failures.labels(rule=rule_id).inc(count)
    render_failures.clear()
    for rule_id, count in ruleset.evictions.items():
        metrics.state_evictions.labels(rule=rule_id).inc(count)
    ruleset.evictions.clear()
    for rule_id, seconds in ruleset.handoffs:
        metrics.time_to_handoff.labels(rule=rule_id).observe(seconds)
    ruleset.handoffs.clear()
    for rule_id, count in ruleset.handoffs_in_time.items():
        metrics.handoffs_in_time.labels(rule=rule_id).inc(count)
    ruleset.handoffs_in_time.clear()
    if ruleset.duplicates:
        metrics.duplicate_deliveries.inc(ruleset.duplicates)
        ruleset.duplicates = 0


def update_open_gauges(driver: Driver, metrics: Metrics) -> None:
    """Open and breached expectations per rule that holds them, the oldest breaches, and the
    size of the state this worker holds."""
    due = driver.due
    for rule in driver.ruleset.rules.values():
        if KINDS[rule.kind].holds_expectations:
            metrics.open_expectations.labels(rule=rule.id).set(due.open[rule.id])
            metrics.open_breaches.labels(rule=rule.id).set(due.breached[rule.id])
    metrics.set_oldest_breaches(due.oldest_breaches())
    entries, size = driver.table_size()
    metrics.state_entries.set(entries)
    metrics.state_bytes.set(size)
