"""Restoring event-time order: hold events until the watermark passes them, then release in order.

With a buffer in front of the engine, events that arrive out of order by up to the lateness give
exactly the findings of the same events in event-time order (replay, rule tests). The price is
that a finding waits for the lateness; the live worker therefore processes events at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.engine.clock import EPOCH
from monitor.events import EventRef


def order_key(event: EventRef) -> tuple[datetime, str, str]:
    """Total event-time order; ties broken by source and id so arrival order never matters
    (records with the same time, source and id are a producer's retries: the first to arrive
    goes first, and a rule that applied it drops the others as duplicates)."""
    return (event.time, event.source, event.id)


_Held = tuple[tuple[datetime, str, str], int, EventRef]


@dataclass
class ReorderBuffer:
    """Holds events no later than `lateness` behind the newest one; releases them sorted.

    Most events arrive in order (a recording is mostly sorted): those wait in a queue, the
    others in a heap, and each release takes the smaller of the two heads, so the order is the
    one a single heap gives, without a heap push and pop per event.
    """

    lateness: timedelta
    highest: datetime = EPOCH
    # (order key, arrival number, event): the number settles equal keys, whose events may
    # differ (a retry with another payload) and cannot be compared.
    _heap: list[_Held] = field(default_factory=list)  # arrived out of order
    _run: deque[_Held] = field(default_factory=deque)  # each after the one before it
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
        key = order_key(event)
        run = self._run
        if not run or run[-1][0] <= key:  # an equal key arrived later: its number is higher
            run.append((key, next(self._arrivals), event))
        else:
            heapq.heappush(self._heap, (key, next(self._arrivals), event))
        if event.time > self.highest:
            self.highest = event.time
        return self._release(self.watermark)

    def drain(self) -> list[EventRef]:
        """Everything still held, in order (end of input)."""
        return self._release(None)

    def _release(self, until: datetime | None) -> list[EventRef]:
        out: list[EventRef] = []
        run, heap = self._run, self._heap
        while run or heap:
            if heap and (not run or heap[0] < run[0]):  # arrival numbers differ: never a tie
                if until is not None and heap[0][0][0] >= until:
                    break
                out.append(heapq.heappop(heap)[2])
            else:
                if until is not None and run[0][0][0] >= until:
                    break
                out.append(run.popleft()[2])
        return out
