"""Every cxmon metric, defined on an injected registry; label values stay low-cardinality."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from monitor import __version__
from monitor.events.rejects import RejectReason
from monitor.rules.compiled import CompiledRule

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
HANDOFF_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400)


class Metrics:
    """The worker's metrics. Create once per process with the registry to expose."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.build_info = Info("cxmon_build", "cxmon version", registry=registry)
        self.build_info.info({"version": __version__})
        self.events_consumed = Counter(
            "cxmon_events_consumed_total",
            "Events accepted, by department and event type",
            ["department", "type"],
            registry=registry,
        )
        self.events_rejected = Counter(
            "cxmon_events_rejected_total",
            "Records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.duplicate_deliveries = Counter(
            "cxmon_duplicate_deliveries_total",
            "Rule evaluations skipped because the event's source+id was already processed",
            registry=registry,
        )
        self.conflicts = Counter(
            "cxmon_conflicts_total",
            "Alerts raised, by rule, kind, severity, status and the gap's department pair",
            ["rule", "kind", "severity", "from_department", "to_department", "status"],
            registry=registry,
        )
        self.open_expectations = Gauge(
            "cxmon_open_expectations",
            "Follow-ups being waited for (stalled handoffs not yet due or answered), by rule",
            ["rule"],
            registry=registry,
        )
        self.time_to_handoff = Histogram(
            "cxmon_time_to_handoff_seconds",
            "Event time from a handoff's first event to its follow-up, by rule",
            ["rule"],
            buckets=HANDOFF_BUCKETS,
            registry=registry,
        )
        self.detection_latency = Histogram(
            "cxmon_detection_latency_seconds",
            "Wall time from the conflict (event time or deadline) to the alert, by kind",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.alerts_published = Counter(
            "cxmon_alerts_published_total",
            "Alerts written to the alerts topic, by status",
            ["status"],
            registry=registry,
        )
        self.rule_eval_errors = Counter(
            "cxmon_rule_eval_errors_total",
            "CEL evaluations that failed on an event (counted as no match), by rule",
            ["rule"],
            registry=registry,
        )
        self.rules_loaded = Gauge(
            "cxmon_rules_loaded", "Rules currently running", ["kind"], registry=registry
        )
        self.rule_reloads = Counter(
            "cxmon_rule_reloads_total", "Rule (re)loads, by outcome", ["outcome"], registry=registry
        )
        self.worker_ready = Gauge(
            "cxmon_worker_ready", "1 once the worker has joined its group", registry=registry
        )
        for reason in RejectReason:
            self.events_rejected.labels(reason=str(reason))
        for status in ("firing", "resolved"):
            self.alerts_published.labels(status=status)
        for outcome in ("success", "failure"):
            self.rule_reloads.labels(outcome=outcome)

    def init_rules(self, rules: Iterable[CompiledRule]) -> None:
        """Create every rule's series at zero so dashboards show 0, not "no data"."""
        counts: dict[str, int] = {}
        for rule in rules:
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
            source, target = rule.gap
            for status in ("firing", "resolved"):
                self.conflicts.labels(rule.id, rule.kind, rule.severity, source, target, status)
            self.rule_eval_errors.labels(rule=rule.id)
            self.detection_latency.labels(kind=rule.kind)
            if rule.kind == "stalled":
                self.open_expectations.labels(rule=rule.id)
                self.time_to_handoff.labels(rule=rule.id)
        for kind in ("contradiction", "stalled", "requires", "during", "burst"):
            self.rules_loaded.labels(kind=kind).set(counts.get(kind, 0))
