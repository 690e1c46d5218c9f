"""Engine clocks: wall time live, the event-time watermark in replay, a fake in tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_LATENESS = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Watermark:
    """Tracks the highest event time seen; events older than it minus `lateness` are too late."""

    lateness: timedelta = DEFAULT_LATENESS
    highest: datetime = field(default=EPOCH)

    def observe(self, event_time: datetime) -> None:
        """Advance with an accepted event."""
        if event_time > self.highest:
            self.highest = event_time

    @property
    def value(self) -> datetime:
        """Event time up to which the stream is considered complete."""
        return self.highest - self.lateness

    def is_too_late(self, event_time: datetime) -> bool:
        """Whether an event falls behind the watermark."""
        return event_time < self.value


def deadline_clock(
    now: datetime, inputs: Iterable[tuple[bool | None, Watermark | None]]
) -> datetime:
    """The moment a worker breaches deadlines up to: `now`, unless it reads through a backlog.

    `inputs`: for each input partition it reads, whether records it has not handled wait there
    (None: not known yet, before the partition's first fetch) and its watermark (None: nothing
    handled there yet). A partition with records waiting whose newest event handled is older
    than the lateness holds deadlines back to its watermark's value: an event still unread there
    may be that old, and may be the follow-up that meets a deadline. A live partition (its
    newest event within the lateness of `now`) never holds them back; one that is not known
    yet, or has records waiting and none handled, holds them all (EPOCH).
    """
    clock = now
    for waiting, mark in inputs:
        if waiting is False:
            continue
        if waiting is None or mark is None:
            return EPOCH
        if mark.highest < now - mark.lateness:
            clock = min(clock, mark.value)
    return clock


@dataclass
class FakeClock:
    """A clock tests move by hand."""

    current: datetime

    def now(self) -> datetime:
        """The current fake time."""
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        """Move forward and return the new time."""
        self.current += delta
        return self.current
