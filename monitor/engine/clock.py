"""Engine clocks: wall time live, the event-time watermark in replay, a fake in tests."""

from __future__ import annotations

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
