"""Business windows: the horizon state is forgotten after bounds every window, and a held promise
lives exactly as long as its window, however the sweeps fall."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.fields import WEEKDAYS
from monitor.engine import Ruleset
from monitor.events import Event
from monitor.rules import load_rules
from monitor.rules.calendar import BusinessCalendar, Window, build_calendar
from tests.unit.engine.harness import EngineHarness

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]


@st.composite
def calendars(draw: st.DrawFn) -> Window:
    days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
    opens = draw(st.integers(min_value=0, max_value=22))
    closes = draw(st.integers(min_value=opens + 1, max_value=23))
    first = date(2026, 1, 1) + timedelta(days=draw(st.integers(min_value=0, max_value=700)))
    closure = draw(st.integers(min_value=0, max_value=40))  # a block of consecutive holidays
    scattered = draw(st.lists(st.integers(min_value=0, max_value=700), max_size=10))
    holidays = [first + timedelta(days=i) for i in range(closure)]
    holidays += [date(2026, 1, 1) + timedelta(days=i) for i in scattered]
    calendar = build_calendar(
        "c",
        draw(st.sampled_from(ZONES)),
        sorted(days, key=WEEKDAYS.index),
        f"{opens:02d}:00-{closes:02d}:30",
        [h.isoformat() for h in holidays],
    )
    span = timedelta(minutes=draw(st.integers(min_value=1, max_value=60 * 60)))
    return Window(span, calendar)


@settings(max_examples=100, deadline=None)
@given(calendars(), st.integers(min_value=0, max_value=800 * 24 * 60))
def test_a_business_window_never_outlasts_the_horizon(window: Window, minute: int) -> None:
    start = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(minutes=minute)
    assert window.deadline(start) - start <= window.horizon


@settings(max_examples=50, deadline=None)
@given(calendars(), st.integers(min_value=0, max_value=800 * 24 * 60))
def test_a_remembered_deadline_is_the_one_worked_out_for_the_same_instant(
    window: Window, minute: int
) -> None:
    start = datetime(2025, 12, 1, tzinfo=UTC) + timedelta(minutes=minute)
    assert window.calendar is not None
    fresh = BusinessCalendar.add.__wrapped__(window.calendar, start, window.span)
    elsewhere = start.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert window.deadline(start) == fresh == window.deadline(elsewhere) == window.deadline(start)
    assert window.deadline(elsewhere).tzinfo is UTC


RULE = """\
version: 1
calendars:
  emea: {timezone: Europe/Berlin, hours: "09:00-17:00", holidays: [%s]}
rules:
  - id: charged-after-waiver
    title: t
    kind: contradiction
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: invoice.charged}
    within: {business: 8h, calendar: emea}
"""
# Thursday 2026-12-10 16:00 Berlin: one business hour left that day, then closed for 25 days
# (11 December to 4 January); the window ends 7 business hours into Tuesday 5 January
PROMISE = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
CLOSURE = [date(2026, 12, 11) + timedelta(days=i) for i in range(25)]
CHARGE = datetime(2027, 1, 5, 10, 0, tzinfo=UTC)  # Tuesday, first working day after the closure


def _detector(tmp_path: Path) -> EngineHarness:
    (tmp_path / "r.yaml").write_text(RULE % ", ".join(d.isoformat() for d in CLOSURE))
    loaded = load_rules([tmp_path])
    assert loaded.issues == []
    return EngineHarness(Ruleset(loaded.rules, lateness=timedelta(minutes=5)))


def _event(kind: str, source: str, at: datetime) -> Event:
    return Event(id=kind, source=source, type=kind, time=at, subject="c1", data={})


def test_a_promise_before_a_long_closure_is_kept_through_it_with_or_without_sweeps(
    tmp_path: Path,
) -> None:
    outcomes = []
    for sweep_every in (None, timedelta(seconds=1), timedelta(hours=1), timedelta(days=1)):
        detector = _detector(tmp_path)
        detector.process(_event("fee.waiver_promised", "support", PROMISE), PROMISE)
        now = PROMISE
        while sweep_every is not None and now < CHARGE - sweep_every:
            now += sweep_every if sweep_every >= timedelta(hours=1) else timedelta(hours=6)
            detector.advance(now)
        found = detector.process(_event("invoice.charged", "billing", CHARGE), CHARGE)
        outcomes.append([f.rule.id for f in found])
    assert outcomes == [["charged-after-waiver"]] * 4


def test_a_promise_is_forgotten_once_its_business_window_closed(tmp_path: Path) -> None:
    detector = _detector(tmp_path)
    detector.process(_event("fee.waiver_promised", "support", PROMISE), PROMISE)
    end = datetime(2027, 1, 5, 15, 0, tzinfo=UTC)  # 16:00 Berlin
    detector.advance(end + timedelta(minutes=4))  # within the lateness: a late charge may come
    [state] = detector.states.values()
    assert [h.slot for h in state.held] == ["first"]
    detector.advance(end + timedelta(minutes=6))
    assert [h.slot for h in state.held] == []
