"""The notifier's metrics (in `cxmon notify` or inside a worker), on an injected registry."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitor.metrics.common import process_metrics
from monitor.scrape import PendingDeliveries

# Delivery latency: up to the retry horizon (CXMON_NOTIFY_MAX_AGE_S, an hour by default) and past.
DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
CHANNELS = ("apprise", "webhook", "console", "kafka")
DELIVERY_OUTCOMES = ("success", "retry", "failure", "dead_lettered")


BOARD_ACTIONS = ("create", "expire")
BOARD_OUTCOMES = ("success", "invalid", "unauthorized", "forbidden", "unavailable")


class NotifierMetrics:
    """The notifier's metrics (in `cxmon notify` or inside a worker). Receivers are ops-named,
    few and fixed by `alerting.yaml`, so they are safe labels."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        process_metrics(registry, "notifier")
        self.ready = Gauge(
            "cxmon_notifier_ready",
            "1 once the notifier has joined its group and read the silences",
            registry=registry,
        )
        self.pending = PendingDeliveries()
        registry.register(self.pending)
        self.alerts_received = Counter(
            "cxmon_notifier_alerts_received_total",
            "Alerts read from the alerts topic, by status",
            ["status"],
            registry=registry,
        )
        self.deliveries = Counter(
            "cxmon_alert_deliveries_total",
            "Notification attempts, by receiver, channel type and outcome",
            ["receiver", "channel", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "cxmon_alert_delivery_retries_total",
            "Delivery attempts that failed and were scheduled again, by receiver",
            ["receiver"],
            registry=registry,
        )
        self.silenced = Counter(
            "cxmon_alerts_silenced_total",
            "Alerts matched by a silence and not sent, by rule",
            ["rule"],
            registry=registry,
        )
        self.resent = Counter(
            "cxmon_notifications_resent_total",
            "Alerts sent again because a notifier stopped while sending them (it recorded the "
            "intent, not the outcome): the channel may have them twice",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "cxmon_alerts_dead_lettered_total",
            "Alerts written to the alerts dead-letter topic after the last retry, by receiver",
            ["receiver"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "cxmon_alert_delivery_latency_seconds",
            "Wall time from detection to successful delivery, by receiver",
            ["receiver"],
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self.silences_active = Gauge(
            "cxmon_silences_active", "Silences currently in force", registry=registry
        )
        self.alertmanager_resends = Counter(
            "cxmon_alertmanager_resends_total",
            "Rounds re-posting the alerts still firing to Alertmanager, by outcome",
            ["outcome"],
            registry=registry,
        )
        for status in ("firing", "resolved"):
            self.alerts_received.labels(status=status)
        for outcome in ("success", "failure"):
            self.alertmanager_resends.labels(outcome=outcome)
        self.board_conflicts = Gauge(
            "cxmon_board_conflicts",
            "Conflicts on the notifier's conflict board, by state (open, resolved)",
            ["state"],
            registry=registry,
        )
        self.board_writes = Counter(
            "cxmon_board_writes_total",
            "Silence writes asked of the conflict board, by action and outcome",
            ["action", "outcome"],
            registry=registry,
        )
        self.observe_board(0, 0)
        for action in BOARD_ACTIONS:
            for outcome in BOARD_OUTCOMES:
                self.board_writes.labels(action=action, outcome=outcome)

    def observe_board(self, open_: int, resolved: int) -> None:
        """The board's current size."""
        self.board_conflicts.labels(state="open").set(open_)
        self.board_conflicts.labels(state="resolved").set(resolved)

    def count_board_write(self, action: str, outcome: str) -> None:
        """One create or expire request and how it ended."""
        self.board_writes.labels(action=action, outcome=outcome).inc()

    def init_receivers(self, receivers: Iterable[tuple[str, str]]) -> None:
        """Create every (receiver, channel) series at zero so panels show 0, not "no data"."""
        for receiver, channel in receivers:
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(receiver=receiver, channel=channel, outcome=outcome)
            self.retries.labels(receiver=receiver)
            self.dead_lettered.labels(receiver=receiver)
            self.delivery_latency.labels(receiver=receiver)
