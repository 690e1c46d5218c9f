"""The worker's metrics, defined on an injected registry; label values stay low-cardinality."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.engine.kinds import KINDS
from monitor.events.envelope import department_of
from monitor.events.rejects import RejectReason
from monitor.metrics.common import process_metrics
from monitor.rules.compiled import CompiledRule
from monitor.scrape import OldestBreach, WatermarkLag

log = logging.getLogger("cxmon")
# Detection latency: live detections take milliseconds; the top buckets reach the live horizon.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 900)
HOUR, DAY = 3600, 86400
# Time to handoff: a bucket at every shipped SLA (16 business hours, 3 d, 5 d) and half-day
# steps between 1 and 3 days, so "% within SLA" and day-scale quantiles are not guesses.
HANDOFF_BUCKETS = (
    *(60, 300, 900, HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, DAY),
    *(1.5 * DAY, 2 * DAY, 2.5 * DAY, 3 * DAY, 4 * DAY, 5 * DAY, 7 * DAY, 14 * DAY),
)
LOOP_LAG_EVERY_S = 0.25  # how often the worker samples its event loop's lag
LIVE_HORIZON_S = 900.0  # conflicts older than this at detection are history, not live latency
OTHER = "other"  # the label value of departments and event types over the series limit
# Department and type label values longer than this count as "other": every scrape carries each
# series' labels, so a producer must not be able to grow it by the length of what it writes.
MAX_LABEL_CHARS = 100


class Metrics:
    """The worker's metrics. Create once per process with the registry to expose.

    Departments and event types come from producers, so a producer that invents them must not
    be able to invent series: beyond the pairs the rules listen to, at most `max_event_series`
    (department, type) pairs get their own series; later new types count as type "other" under
    their department, and departments beyond `max_event_series` as department "other".
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        max_event_series: int = 1000,
        live_horizon_s: float = LIVE_HORIZON_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.max_event_series = max_event_series
        self.live_horizon_s = live_horizon_s
        self.clock = clock
        self._consumed: dict[tuple[str, str], Any] = {}  # label pair -> its counter child
        self._departments: set[str] = set()
        self._new_pairs = 0  # pairs counted that no rule listens to
        self._over_limit = False
        self._stalled: tuple[str, ...] = ()
        process_metrics(registry, "worker")
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
        self.late_events = Counter(
            "cxmon_late_events_total",
            "Events older than the watermark minus the lateness (dead-lettered as too_late), "
            "by department",
            ["department"],
            registry=registry,
        )
        self.events_out_of_order = Counter(
            "cxmon_events_out_of_order_total",
            "Events accepted although older than one already seen on their partition, by department",
            ["department"],
            registry=registry,
        )
        self.dead_letter_failures = Counter(
            "cxmon_dead_letter_failures_total",
            "Rejected records that could not be written to the dead-letter topic (counted "
            "under their reason in cxmon_events_rejected_total all the same)",
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
        self.state_entries = Gauge(
            "cxmon_state_entries",
            "Rule+key states stored for the partitions this worker owns",
            registry=registry,
        )
        self.state_bytes = Gauge(
            "cxmon_state_bytes",
            "Bytes of the rule+key states stored for the partitions this worker owns",
            registry=registry,
        )
        self.loop_lag = Histogram(
            "cxmon_event_loop_lag_seconds",
            "How late the event loop ran a timer due at once (sampled every "
            f"{LOOP_LAG_EVERY_S} s): the time one piece of work held the loop",
            buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.open_expectations = Gauge(
            "cxmon_open_expectations",
            "Follow-ups being waited for (stalled handoffs not yet due or answered), by rule",
            ["rule"],
            registry=registry,
        )
        self.open_breaches = Gauge(
            "cxmon_open_breaches",
            "Handoffs past their SLA whose follow-up has still not arrived, by rule",
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
        self.handoffs_in_time = Counter(
            "cxmon_handoffs_in_time_total",
            "Handoffs whose follow-up arrived by the SLA deadline (event time), by rule",
            ["rule"],
            registry=registry,
        )
        self.detection_latency = Histogram(
            "cxmon_detection_latency_seconds",
            "Wall time from the conflict (event time or deadline) to the alert, by kind; "
            "live conflicts only (see cxmon_historical_detections_total)",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.historical_detections = Counter(
            "cxmon_historical_detections_total",
            "Firing alerts for conflicts older than the live horizon when detected (replayed, "
            "backfilled or caught-up history), kept out of the latency histogram, by kind",
            ["kind"],
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
        self.message_render_failures = Counter(
            "cxmon_message_render_failures_total",
            "Alert messages whose template failed or went over a limit (the title was sent), "
            "by rule",
            ["rule"],
            registry=registry,
        )
        self.state_evictions = Counter(
            "cxmon_state_evictions_total",
            "State entries (remembered events, ids, open follow-ups) dropped, oldest first, "
            "because one rule+customer went over max_state_entries, by rule",
            ["rule"],
            registry=registry,
        )
        self.rules_loaded = Gauge(
            "cxmon_rules_loaded", "Rules currently running", ["kind"], registry=registry
        )
        self.rule_reloads = Counter(
            "cxmon_rule_reloads_total", "Rule (re)loads, by outcome", ["outcome"], registry=registry
        )
        self.rules_last_reload_successful = Gauge(
            "cxmon_rules_last_reload_successful",
            "1 if the last rule (re)load succeeded, 0 if the running rules are older than the files",
            registry=registry,
        )
        self.rules_last_reload_timestamp = Gauge(
            "cxmon_rules_last_reload_timestamp_seconds",
            "Unix time of the last successful rule (re)load",
            registry=registry,
        )
        self.mapping_skipped = Counter(
            "cxmon_mapping_skipped_total",
            "Records of a mapped topic that the mapping's `when` skipped, by topic",
            ["topic"],
            registry=registry,
        )
        self.mapping_failures = Counter(
            "cxmon_mapping_failures_total",
            "Records of a mapped topic that failed their mapping (dead-lettered as "
            "mapping_failed), by topic and the field that failed",
            ["topic", "field"],
            registry=registry,
        )
        self.worker_ready = Gauge(
            "cxmon_worker_ready", "1 once the worker has joined its group", registry=registry
        )
        self.changelog_records = Counter(
            "cxmon_changelog_records",
            "State records sent to the state changelog (a state written again while a send was "
            "in flight leaves once, with its last value)",
            registry=registry,
        )
        self.changelog_unsent = Gauge(
            "cxmon_changelog_unsent_writes",
            "State writes recorded and not yet confirmed by the broker: the changelog's lag "
            "behind the worker (the input offsets behind them wait)",
            registry=registry,
        )
        self.deadline_clock = Gauge(
            "cxmon_deadline_clock_timestamp_seconds",
            "Unix time up to which the worker's last sweep breached deadlines: the wall clock "
            "less a 2 s grace, or, while it reads a backlog, the backlog's event time less the "
            "lateness (0: held until its input partitions are known)",
            registry=registry,
        )
        self.oldest_breach = OldestBreach(clock)
        registry.register(self.oldest_breach)
        self.watermark_lag = WatermarkLag(dict, clock)  # no partitions until watch_watermarks
        registry.register(self.watermark_lag)
        for reason in RejectReason:
            self.events_rejected.labels(reason=str(reason))
        for status in ("firing", "resolved"):
            self.alerts_published.labels(status=status)
        for outcome in ("success", "failure"):
            self.rule_reloads.labels(outcome=outcome)

    def count_consumed(self, department: str, type_: str, count: int = 1) -> None:
        """Count accepted events under their department and type, or "other" over the limit."""
        child = self._consumed.get((department, type_))
        if child is None:
            child = self._new_consumed(department, type_)
        child.inc(count)

    def count_late(self, department: str, count: int = 1) -> None:
        """Count events dead-lettered as too late, by department (or "other")."""
        self.late_events.labels(self.department_label(department)).inc(count)

    def count_out_of_order(self, department: str, count: int = 1) -> None:
        """Count events accepted out of order, by department (or "other")."""
        self.events_out_of_order.labels(self.department_label(department)).inc(count)

    def department_label(self, department: str) -> str:
        """The department as a label value: "other" once `max_event_series` departments are,
        or when longer than `MAX_LABEL_CHARS`."""
        if department in self._departments:
            return department
        if len(department) > MAX_LABEL_CHARS:
            return OTHER
        if len(self._departments) < self.max_event_series:
            self._departments.add(department)
            return department
        return OTHER

    def _new_consumed(self, department: str, type_: str) -> Any:
        label = self.department_label(department)
        short = len(type_) <= MAX_LABEL_CHARS
        if label != OTHER and short and self._new_pairs < self.max_event_series:
            self._new_pairs += 1
            pair = (label, type_)
        else:
            pair = (label, OTHER)
            if pair in self._consumed:
                return self._consumed[pair]
            if short and not self._over_limit:
                self._over_limit = True
                log.warning(
                    "more than %d department/event type pairs: later ones count as type %r "
                    "in cxmon_events_consumed_total (setting max_event_series)",
                    self.max_event_series,
                    OTHER,
                )
        child = self._consumed[pair] = self.events_consumed.labels(*pair)
        return child

    def init_sources(self, topics: Iterable[str]) -> None:
        """Create each mapped topic's skip and failure series at zero (topics are ops-named)."""
        for topic in topics:
            self.mapping_skipped.labels(topic=topic)
            for name in ("value", "when", "source", "id", "type", "time", "subject", "data"):
                self.mapping_failures.labels(topic=topic, field=name)

    def rules_loaded_outcome(self, success: bool) -> None:
        """Count a rule (re)load and remember whether the running rules match the files."""
        self.rule_reloads.labels(outcome="success" if success else "failure").inc()
        self.rules_last_reload_successful.set(1 if success else 0)
        if success:
            self.rules_last_reload_timestamp.set(self.clock())

    def observe_detection(self, kind: str, conflict_time: datetime, detected_at: datetime) -> None:
        """Detection latency of a firing alert, if the conflict is live: one older than the
        live horizon when detected (a backfill, a replay, a catch-up after downtime) would
        fill the top bucket and hide the live figure, so it is counted apart."""
        lag = (detected_at - conflict_time).total_seconds()
        if lag > self.live_horizon_s:
            self.historical_detections.labels(kind=kind).inc()
        else:
            self.detection_latency.labels(kind=kind).observe(max(lag, 0.0))

    def watch_watermarks(self, watermarks: Callable[[], Mapping[int, datetime]]) -> None:
        """Expose `cxmon_watermark_lag_seconds` from the partitions' watermarks at scrape time."""
        self.watermark_lag.watermarks = watermarks

    def set_oldest_breaches(self, deadlines: Mapping[str, float]) -> None:
        """The deadline (epoch seconds) of each stalled rule's oldest open breach."""
        self.oldest_breach.update(self._stalled, deadlines)

    def init_rules(self, rules: Iterable[CompiledRule]) -> None:
        """Create every rule's series at zero so dashboards show 0, not "no data"."""
        counts: dict[str, int] = {}
        stalled: list[str] = []
        for rule in rules:
            counts[rule.kind] = counts.get(rule.kind, 0) + 1
            for matcher in rule.matchers:
                for department in sorted({department_of(s) for s in matcher.sources or ()}):
                    self.late_events.labels(department=department)
                    self.events_out_of_order.labels(department=department)
                    self._departments.add(department)
                    for type_ in sorted(matcher.types or ()):
                        self._consumed[(department, type_)] = self.events_consumed.labels(
                            department, type_
                        )
            source, target = rule.gap
            for status in ("firing", "resolved"):
                self.conflicts.labels(rule.id, rule.kind, rule.severity, source, target, status)
            self.rule_eval_errors.labels(rule=rule.id)
            self.message_render_failures.labels(rule=rule.id)
            self.state_evictions.labels(rule=rule.id)
            self.detection_latency.labels(kind=rule.kind)
            self.historical_detections.labels(kind=rule.kind)
            if KINDS[rule.kind].holds_expectations:
                stalled.append(rule.id)
                self.open_expectations.labels(rule=rule.id)
                self.open_breaches.labels(rule=rule.id)
                self.time_to_handoff.labels(rule=rule.id)
                self.handoffs_in_time.labels(rule=rule.id)
        self._stalled = tuple(stalled)
        self.oldest_breach.update(self._stalled, self.oldest_breach.deadlines)
        for kind in KINDS:
            self.rules_loaded.labels(kind=kind).set(counts.get(kind, 0))
