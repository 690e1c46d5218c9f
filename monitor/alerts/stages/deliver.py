"""Delivery with retries: exponential backoff with jitter, bounded by a max age, then the DLQ.

Each of the receiver's channels is tried independently and concurrently, so a dead Slack does
not hold back the webhook. A retryable failure is tried again after
`min(max_backoff, initial * 2**(attempt-1))`, scaled by a random factor in [0.5, 1]; when the
next try would start later than `max_age` after the first, or the failure is not retryable,
every alert of the notification goes to the dead-letter topic with the reason. The stage
returns only after every channel succeeded or dead-lettered: that is when offsets may commit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from monitor.alerts.channels import Channel, ChannelError
from monitor.alerts.model import Alert
from monitor.alerts.pipeline import StageContext
from monitor.events.envelope import utcnow
from monitor.metrics import NotifierMetrics

log = logging.getLogger("cxmon.notify")


class DeadLetters(Protocol):
    """Where alerts go that could not be delivered (the `cx.alerts.dlq` topic)."""

    async def dead_letter(
        self, alert: Alert, *, receiver: str, channel: str, reason: str, attempts: int
    ) -> None:
        """Write the alert with the reason; must not return before the write is durable."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff settings; `delay` is pure given the random source."""

    initial: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=1)
    max_age: timedelta = timedelta(hours=1)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(
            self.max_backoff.total_seconds(), self.initial.total_seconds() * 2 ** (attempt - 1)
        )
        return float(ceiling) * (0.5 + rng.random() / 2)


@dataclass
class DeliverStage:
    """Sends to every channel of the receiver, retrying each per the policy."""

    policy: RetryPolicy
    dead_letters: DeadLetters
    metrics: NotifierMetrics
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)

    async def run(self, ctx: StageContext, alerts: Sequence[Alert]) -> Sequence[Alert]:
        """Deliver to all channels; returns the alerts every channel accepted.

        Channels see the alerts after the receiver's PII redaction; the dead-letter topic
        keeps the originals so they can be replayed.
        """
        results = await asyncio.gather(
            *(self._deliver(ctx, channel, alerts) for channel in ctx.receiver.channels)
        )
        return list(alerts) if all(results) else []

    async def _deliver(self, ctx: StageContext, channel: Channel, alerts: Sequence[Alert]) -> bool:
        receiver = ctx.receiver.name
        redaction = ctx.receiver.redaction
        outgoing = [redaction.apply(a) for a in alerts] if redaction else list(alerts)
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                await channel.send(
                    outgoing, receiver=receiver, group_key=ctx.group_key, repeat=ctx.repeat
                )
            except ChannelError as exc:
                wait = self.policy.delay(attempt, self.rng)
                too_old = self.clock() - started + wait > self.policy.max_age.total_seconds()
                if exc.retryable and not too_old:
                    self.metrics.deliveries.labels(receiver, channel.kind, "retry").inc()
                    self.metrics.retries.labels(receiver=receiver).inc()
                    log.warning(
                        "delivery to %s (%s) failed, attempt %d, retrying in %.1fs: %s",
                        receiver,
                        channel.name,
                        attempt,
                        wait,
                        exc,
                    )
                    await self.sleep(wait)
                    continue
                self.metrics.deliveries.labels(receiver, channel.kind, "failure").inc()
                why = (
                    "not retryable"
                    if not exc.retryable
                    else f"gave up after {attempt} attempts (max age {self.policy.max_age})"
                )
                reason = f"{exc} ({why})"
                if not ctx.repeat:  # a reminder's alerts were delivered before; nothing is lost
                    for alert in alerts:
                        await self.dead_letters.dead_letter(
                            alert,
                            receiver=receiver,
                            channel=channel.name,
                            reason=reason,
                            attempts=attempt,
                        )
                        self.metrics.dead_lettered.labels(receiver=receiver).inc()
                    self.metrics.deliveries.labels(receiver, channel.kind, "dead_lettered").inc()
                log.error("delivery to %s (%s) failed for good: %s", receiver, channel.name, reason)
                return False
            self.metrics.deliveries.labels(receiver, channel.kind, "success").inc()
            now = self.now()
            for alert in alerts:
                self.metrics.delivery_latency.labels(receiver=receiver).observe(
                    max((now - alert.detected_at).total_seconds(), 0.0)
                )
            return True
