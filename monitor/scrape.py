"""Metrics whose value is an age, computed when Prometheus scrapes rather than when code runs.

An age set by the code would stand still whenever the code does (no event, a stuck loop):
exactly when it matters. These collectors read a snapshot the owning code keeps up to date and
subtract it from the wall clock at scrape time. Scrapes run on the HTTP server's thread, so each
snapshot is read as one copy of a dict (atomic under the GIL), never iterated while it changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from itertools import count

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

Clock = Callable[[], float]  # wall time, epoch seconds


class WatermarkLag(Collector):
    """`cxmon_watermark_lag_seconds{partition}`: wall clock minus each input partition's
    event-time watermark (the newest event time seen, less the lateness)."""

    def __init__(self, watermarks: Callable[[], Mapping[int, datetime]], clock: Clock) -> None:
        self.watermarks = watermarks
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per partition this worker has a watermark for."""
        family = GaugeMetricFamily(
            "cxmon_watermark_lag_seconds",
            "Wall clock minus the event-time watermark, by input partition this worker reads",
            labels=["partition"],
        )
        now = self.clock()
        for partition, mark in sorted(dict(self.watermarks()).items()):
            family.add_metric([str(partition)], max(now - mark.timestamp(), 0.0))
        yield family


class OldestBreach(Collector):
    """`cxmon_oldest_open_breach_age_seconds{rule}`: how long past its SLA the oldest handoff
    still without follow-up is, per stalled rule (0 when none is open)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rules: tuple[str, ...] = ()  # the stalled rules, each with a series from the start
        self.deadlines: dict[str, float] = {}  # rule -> the oldest open breach's deadline

    def update(self, rules: Iterable[str], deadlines: Mapping[str, float]) -> None:
        """Replace the snapshot (called on the event loop after each sweep)."""
        self.rules = tuple(rules)
        self.deadlines = dict(deadlines)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per stalled rule."""
        family = GaugeMetricFamily(
            "cxmon_oldest_open_breach_age_seconds",
            "Time since the deadline of the oldest handoff past its SLA still without "
            "follow-up, by rule (0: none open)",
            labels=["rule"],
        )
        now = self.clock()
        deadlines = self.deadlines
        for rule in self.rules:
            due = deadlines.get(rule)
            family.add_metric([rule], 0.0 if due is None else max(now - due, 0.0))
        yield family


class PendingDeliveries(Collector):
    """Alerts the notifier read and has not finished with (delivered or dead-lettered):
    `cxmon_notifier_pending_alerts` and `cxmon_notifier_oldest_pending_alert_age_seconds`
    (since the oldest one's detection)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._since: dict[int, float] = {}
        self._tokens = count()

    def track(self, detected_at: datetime, ack: Callable[[], object]) -> Callable[[], None]:
        """Count an alert as pending; the returned callable acks it and ends the count."""
        token = next(self._tokens)
        self._since[token] = detected_at.timestamp()

        def done() -> None:
            self._since.pop(token, None)
            ack()

        return done

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The depth and the oldest age (0 when nothing is pending)."""
        since = list(self._since.values())
        yield GaugeMetricFamily(
            "cxmon_notifier_pending_alerts",
            "Alerts read from the alerts topic and not yet delivered or dead-lettered",
            value=len(since),
        )
        oldest = min(since, default=None)
        yield GaugeMetricFamily(
            "cxmon_notifier_oldest_pending_alert_age_seconds",
            "Time since the detection of the oldest alert not yet delivered or dead-lettered "
            "(0: none pending)",
            value=0.0 if oldest is None else max(self.clock() - oldest, 0.0),
        )
