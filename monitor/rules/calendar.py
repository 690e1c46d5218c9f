"""Business time: working hours in a time zone minus holidays, for SLAs like `{business: 16h, calendar: emea}`."""

from __future__ import annotations

import difflib
import functools
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from monitor.config.fields import WEEKDAYS


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours in a zone; holidays are whole local dates."""

    name: str
    zone: ZoneInfo
    weekdays: frozenset[int]
    start: time
    end: time
    holidays: frozenset[date]

    def _working(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    # Pure, and asked again and again for the same held event (each time its state is indexed).
    @functools.lru_cache(maxsize=16_384)  # noqa: B019  # calendars live as long as the process
    def add(self, moment: datetime, amount: timedelta) -> datetime:
        """The instant when `amount` of business time has passed after `moment` (depends only
        on the instant `moment` is, not on its zone)."""
        local = moment.astimezone(self.zone)
        remaining = amount
        day = local.date()
        cursor = local
        for _ in range(
            3660
        ):  # at most ten years of days: a calendar with no working time ends here
            if self._working(day):
                opens = datetime.combine(day, self.start, self.zone)
                closes = datetime.combine(day, self.end, self.zone)
                begin = max(cursor, opens)
                if begin < closes:
                    available = closes - begin
                    if remaining <= available:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), self.zone)
        raise ValueError(f"calendar {self.name!r} has no working time")


class CalendarError(ValueError):
    """A calendar value that cannot be used: which field (path inside the calendar), and a hint."""

    def __init__(self, message: str, field: tuple[str | int, ...], hint: str) -> None:
        super().__init__(message)
        self.field = field
        self.hint = hint


def build_calendar(
    name: str, zone: str, days: list[str], hours: str, holidays: list[str]
) -> BusinessCalendar:
    """A calendar from its spec values; raises CalendarError on a bad zone, hours or date."""
    opens, closes = hours.split("-")
    try:
        start, end = time.fromisoformat(opens), time.fromisoformat(closes)
    except ValueError:
        raise CalendarError(
            f"working hours {hours!r} are not times of day",
            ("hours",),
            "hours like '09:00-17:30', on a 24-hour clock",
        ) from None
    if end <= start:
        raise CalendarError(
            f"working hours must end after they start, got {hours!r}",
            ("hours",),
            "hours like '09:00-17:30', on a 24-hour clock, within one day",
        )
    if not days:
        raise CalendarError(
            "a calendar needs at least one working day", ("days",), "days like [mon, tue, wed]"
        )
    try:
        tz = ZoneInfo(zone)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError; a bad path a ValueError
        close = difflib.get_close_matches(zone, sorted(available_timezones()), n=1)
        raise CalendarError(
            f"unknown time zone {zone!r}",
            ("timezone",),
            f"did you mean '{close[0]}'?"
            if close
            else "an IANA time zone name, like 'Europe/Berlin' or 'America/New_York'",
        ) from None
    dates = []
    for index, holiday in enumerate(holidays):
        try:
            dates.append(date.fromisoformat(holiday))
        except ValueError:
            raise CalendarError(
                f"holiday {holiday!r} is not a date",
                ("holidays", index),
                "holidays as YYYY-MM-DD, e.g. 2026-12-25",
            ) from None
    return BusinessCalendar(
        name=name,
        zone=tz,
        weekdays=frozenset(WEEKDAYS.index(d) for d in days),
        start=start,
        end=end,
        holidays=frozenset(dates),
    )


@functools.lru_cache(maxsize=256)
def longest_window(calendar: BusinessCalendar, span: timedelta) -> timedelta:
    """The most wall time `span` of business time can take from any start: an upper bound of
    `calendar.add(t, span) - t` for every `t`.

    `add(t) - t` grows while `t` is in working time (the end moves at least as fast) and shrinks
    outside it (the end stays put), so its maxima are at closing times. Outside the holidays the
    week repeats; every close from `pad` before the first holiday (no earlier window reaches
    them) to a year after the last one (both daylight-saving changes) is tried, and the largest
    change of UTC offset seen is added for the years not tried.
    """
    working_days = math.ceil(span / _daily(calendar)) + 1
    pad = timedelta(days=7 * working_days + 7)  # a week holds at least one working day
    around = sorted(calendar.holidays) or [_REFERENCE]
    day, last = around[0] - pad, around[-1] + max(pad, timedelta(days=366))
    longest = timedelta(0)
    offsets: set[timedelta] = set()
    while day <= last:
        closes = datetime.combine(day, calendar.end, calendar.zone)
        offsets.add(closes.utcoffset() or timedelta(0))
        if calendar._working(day):
            longest = max(longest, calendar.add(closes, span) - closes)
        day += timedelta(days=1)
    return longest + (max(offsets) - min(offsets))


_REFERENCE = date(2026, 1, 1)


def _daily(calendar: BusinessCalendar) -> timedelta:
    day = date(2026, 1, 1)
    return datetime.combine(day, calendar.end) - datetime.combine(day, calendar.start)


@dataclass(frozen=True)
class Window:
    """A rule's `within`: plain wall time, or business time against a calendar."""

    span: timedelta
    calendar: BusinessCalendar | None = None

    def deadline(self, start: datetime) -> datetime:
        """When the window that opens at `start` closes."""
        if self.calendar is None:
            return start + self.span
        return self.calendar.add(start, self.span)

    def contains(self, start: datetime, moment: datetime) -> bool:
        """Whether `moment` falls in the window opened at `start` (inclusive)."""
        return start <= moment <= self.deadline(start)

    @property
    def horizon(self) -> timedelta:
        """The most wall time the window can last from any start (state older is forgotten)."""
        if self.calendar is None:
            return self.span
        return longest_window(self.calendar, self.span)
