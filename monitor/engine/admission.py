"""Admission of a record: decoding, the time range and the late-event rule (the only place that
rule is written), with one watermark per input partition."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.config.durations import format_duration
from monitor.engine.clock import Watermark
from monitor.events import EventRef, Rejected, RejectReason
from monitor.events.codec import (
    DEFAULT_MAX_ATTRIBUTE_CHARS,
    DEFAULT_MAX_DATA_ITEMS,
    Headers,
    check_time_range,
)
from monitor.events.fast import decode_ref


@dataclass
class Admission:
    """Decoding, the time range and the late-event rule, with one watermark per partition
    (producers keep order within a partition only). Counts what it admits, by department."""

    lateness: timedelta
    max_age: timedelta
    max_ahead: timedelta
    max_bytes: int
    max_depth: int
    max_attribute_chars: int = DEFAULT_MAX_ATTRIBUTE_CHARS
    max_items: int = DEFAULT_MAX_DATA_ITEMS
    watermarks: dict[Hashable, Watermark] = field(default_factory=dict)
    consumed: Counter[tuple[str, str]] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    out_of_order: Counter[str] = field(default_factory=Counter)
    _now: datetime | None = field(init=False, repr=False)
    _range: tuple[datetime, datetime] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._now = None  # here: compiled (mypyc), an init=False field's default is never set

    def admit(
        self, where: Hashable, value: bytes | None, headers: Headers | None, now: datetime
    ) -> EventRef:
        """The event of one record read at `where` (a topic partition), or `Rejected` (bad
        record, out of range, too late)."""
        event = decode_ref(
            value,
            headers,
            max_bytes=self.max_bytes,
            max_depth=self.max_depth,
            max_attribute_chars=self.max_attribute_chars,
            max_items=self.max_items,
        )
        return self.check(where, event, now)

    def check(self, where: Hashable, event: EventRef, now: datetime) -> EventRef:
        """The time range, then the late-event rule, for an event decoded (or mapped) already."""
        if now is not self._now:  # a batch is admitted at one `now`: its range is made once
            self._now, self._range = now, (now - self.max_age, now + self.max_ahead)
        earliest, latest = self._range
        if not earliest <= event.time <= latest:
            check_time_range(event, now, self.max_age, self.max_ahead)  # says which bound
        return self.order(where, event)

    def order(self, where: Hashable, event: EventRef) -> EventRef:
        """Apply the late-event rule: refuse an event behind the watermark of `where`."""
        watermark = self.watermarks.get(where)
        if watermark is None:
            watermark = self.watermarks[where] = Watermark(self.lateness)
        department = event.department
        if event.time >= watermark.highest:  # in order: never late (lateness is not negative)
            watermark.highest = event.time
        elif watermark.is_too_late(event.time):
            self.late[department] += 1
            raise Rejected(
                RejectReason.TOO_LATE,
                f"event time {event.time.isoformat()} is behind the watermark "
                f"{watermark.value.isoformat()} (lateness {format_duration(watermark.lateness)})",
            )
        else:
            self.out_of_order[department] += 1
        self.consumed[(department, event.type)] += 1
        return event
