"""The throttle stage: holds a notification until the receiver's rate limit lets it through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.alerts.model import Alert
from monitor.alerts.pipeline import StageContext


@dataclass
class ThrottleStage:
    """Holds a notification until the receiver's rate limit lets it through."""

    async def run(self, ctx: StageContext, alerts: Sequence[Alert]) -> Sequence[Alert]:
        """The same alerts, possibly later."""
        if ctx.receiver.rate_limit is not None:
            await ctx.receiver.rate_limit.acquire()
        return alerts
