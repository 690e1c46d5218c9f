"""The notify pipeline: a tiny `Stage` interface and `run_pipeline`, Alertmanager-style.

A group's flush becomes one `StageContext` and the group's new alerts; each stage returns the
alerts that go on (never mutating its input), and the pipeline stops when none are left.
Stages in order: mute (route time windows) -> silence -> rate limit -> deliver (with retries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from monitor.alerts.model import Alert

if TYPE_CHECKING:
    from monitor.alerts.channels import Channel
    from monitor.alerts.dispatch.route import Route
    from monitor.alerts.ratelimit import RateLimit
    from monitor.alerts.redact import Redaction


@dataclass
class Receiver:
    """A receiver ready to send: its channels, PII redaction and rate limit."""

    name: str
    channels: list[Channel]
    redaction: Redaction | None = None
    rate_limit: RateLimit | None = None
    disabled: list[str] = field(default_factory=list)  # channels off because a secret is unset


@dataclass(frozen=True)
class StageContext:
    """What a stage knows about the notification it works on."""

    receiver: Receiver
    route: Route
    group_key: str
    now: datetime
    repeat: bool = False  # a reminder of alerts still firing after `repeat_interval`


class Stage(Protocol):
    """One step of the notify pipeline.

    `run` is awaited once per notification, in pipeline order. It returns the alerts that go on
    and never mutates its input. Raising aborts the notification; only the deliver stage
    talks to channels, and it never raises for a channel's failure (it retries, then
    dead-letters).
    """

    async def run(self, ctx: StageContext, alerts: Sequence[Alert]) -> Sequence[Alert]: ...


async def run_pipeline(
    stages: Sequence[Stage], ctx: StageContext, alerts: Sequence[Alert]
) -> Sequence[Alert]:
    """Run the stages in order; stop as soon as no alerts are left."""
    for stage in stages:
        if not alerts:
            break
        alerts = await stage.run(ctx, alerts)
    return alerts
