"""Restoring event-time order: hold events until the watermark passes them, then release in order.

With a buffer in front of the engine, events that arrive out of order by up to the lateness give
exactly the findings of the same events in event-time order (replay, rule tests). The price is
that a finding waits for the lateness; the live worker therefore processes events at once.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.engine.clock import EPOCH
from monitor.events import EventRef


def order_key(event: EventRef) -> tuple[datetime, str, str]:
    """Total event-time order; ties broken by source and id so arrival order never matters
    (records with the same time, source and id are a producer's retries: the first to arrive
    goes first, and a rule that applied it drops the others as duplicates)."""
    return (event.time, event.source, event.id)


@dataclass
class ReorderBuffer:
    """Holds events no later than `lateness` behind the newest one; releases them sorted."""

    lateness: timedelta
    highest: datetime = EPOCH
    # (order key, arrival number, event): the number settles equal keys, whose events may
    # differ (a retry with another payload) and cannot be compared.
    _heap: list[tuple[tuple[datetime, str, str], int, EventRef]] = field(default_factory=list)
    _arrivals: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def watermark(self) -> datetime:
        """Events before this time are complete: no accepted event can be older."""
        return self.highest - self.lateness

    def is_too_late(self, event: EventRef) -> bool:
        """Whether the event is behind the watermark (its place in the order has passed)."""
        return event.time < self.watermark

    def push(self, event: EventRef) -> list[EventRef]:
        """Accept an event (not too late); return the events whose time the watermark passed."""
        heapq.heappush(self._heap, (order_key(event), next(self._arrivals), event))
        self.highest = max(self.highest, event.time)
        return self._release(self.watermark)

    def drain(self) -> list[EventRef]:
        """Everything still held, in order (end of input)."""
        return self._release(None)

    def _release(self, until: datetime | None) -> list[EventRef]:
        out: list[EventRef] = []
        while self._heap and (until is None or self._heap[0][0][0] < until):
            out.append(heapq.heappop(self._heap)[2])
        return out
