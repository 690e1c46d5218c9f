"""Stages that hold alerts back on purpose: route mute/active time windows, and silences.

Held-back alerts are counted in `cxmon_alerts_silenced_total{rule}` and not sent; their
offsets are committed like delivered ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from monitor.alerts.labels import alert_labels
from monitor.alerts.model import Alert
from monitor.alerts.pipeline import StageContext
from monitor.alerts.silences import SilenceBook
from monitor.metrics import NotifierMetrics

log = logging.getLogger("cxmon.notify")


@dataclass
class MuteStage:
    """Drops every alert while the route is outside its active time or inside its mute time."""

    metrics: NotifierMetrics

    async def run(self, ctx: StageContext, alerts: Sequence[Alert]) -> Sequence[Alert]:
        """All alerts, or none while the route is muted."""
        if not ctx.route.muted_at(ctx.now):
            return alerts
        for alert in alerts:
            self.metrics.silenced.labels(rule=alert.rule_id).inc()
        log.info(
            "route %s muted by its time windows: %d alert(s) not sent to %s",
            ctx.route.path,
            len(alerts),
            ctx.receiver.name,
        )
        return []


@dataclass
class SilenceStage:
    """Drops alerts matched by an active silence, and counts them."""

    silences: SilenceBook
    metrics: NotifierMetrics

    async def run(self, ctx: StageContext, alerts: Sequence[Alert]) -> Sequence[Alert]:
        """The alerts no active silence matches."""
        kept: list[Alert] = []
        for alert in alerts:
            silence = self.silences.silencing(alert_labels(alert), ctx.now)
            if silence is None:
                kept.append(alert)
                continue
            self.metrics.silenced.labels(rule=alert.rule_id).inc()
            log.info(
                "alert %s (%s) silenced by %s for %s",
                alert.fingerprint,
                alert.status,
                silence.id,
                ctx.receiver.name,
            )
        self.metrics.silences_active.set(len(self.silences.active(ctx.now)))
        return kept
