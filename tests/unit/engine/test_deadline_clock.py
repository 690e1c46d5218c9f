"""When a worker breaches deadlines: the wall clock, held back only while it reads a backlog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.engine.clock import EPOCH, Watermark, deadline_clock

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATENESS = timedelta(minutes=5)


def mark(behind: timedelta) -> Watermark:
    """The watermark of a partition whose newest event handled is `behind` the wall clock."""
    return Watermark(LATENESS, NOW - behind)


def test_caught_up_partitions_leave_the_wall_clock() -> None:
    assert deadline_clock(NOW, []) == NOW
    assert deadline_clock(NOW, [(False, mark(timedelta(days=2))), (False, None)]) == NOW


def test_a_backlog_holds_deadlines_at_its_event_time_less_the_lateness() -> None:
    two_hours = mark(timedelta(hours=2))
    assert deadline_clock(NOW, [(True, two_hours)]) == NOW - timedelta(hours=2) - LATENESS
    # the furthest behind of several backlogs holds
    inputs = [(True, mark(timedelta(hours=1))), (True, two_hours), (False, mark(timedelta(0)))]
    assert deadline_clock(NOW, inputs) == NOW - timedelta(hours=2) - LATENESS


def test_live_traffic_with_records_waiting_does_not_hold_deadlines() -> None:
    """Under steady traffic a partition nearly always has a record or two not handled yet;
    its newest event is within the lateness, and deadlines fire by the wall clock."""
    assert deadline_clock(NOW, [(True, mark(timedelta(seconds=1)))]) == NOW
    assert deadline_clock(NOW, [(True, mark(LATENESS))]) == NOW
    assert deadline_clock(NOW, [(True, mark(LATENESS + timedelta(seconds=1)))]) < NOW


def test_what_is_not_known_yet_holds_every_deadline() -> None:
    """Before a partition's first fetch, or with records waiting and none handled (a worker
    that just started on a backlog), no deadline is breached."""
    assert deadline_clock(NOW, [(False, None), (None, mark(timedelta(0)))]) == EPOCH
    assert deadline_clock(NOW, [(True, None)]) == EPOCH
