"""Durations as rule authors write them, and as alerts say them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.config.durations import format_duration, humanize, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 15m ", timedelta(minutes=15)),
    ],
)
def test_parse_duration_reads_number_and_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30 days", "15 min", "1.5h", "15", "1H", "-5m", "1h 30m", ""])
def test_parse_duration_rejects_other_spellings(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration like '15m'"):
        parse_duration(text)


def test_parse_duration_rejects_zero() -> None:
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0m")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=2), "2d"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=8, seconds=1), "1w1d1s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration_is_shortest_rule_spelling(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["90s", "1h30m", "3d", "30d", "1w1d1s"])
def test_format_duration_round_trips_through_parse(text: str) -> None:
    delta = parse_duration(text)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.xfail(reason="format_duration splits into weeks: 30d -> '4w2d'", strict=True)
def test_format_duration_keeps_whole_days_when_shorter() -> None:
    assert format_duration(timedelta(days=30)) == "30d"


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=3), "3 days"),
        (timedelta(days=1, hours=23), "1 day"),
        (timedelta(hours=2), "2 hours"),
        (timedelta(minutes=45), "45 minutes"),
        (timedelta(weeks=2, days=3), "2 weeks"),
        (timedelta(seconds=1), "1 second"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_humanize_names_largest_unit_rounded_down(delta: timedelta, text: str) -> None:
    assert humanize(delta) == text


def test_humanize_ignores_sign() -> None:
    assert humanize(timedelta(hours=-2)) == "2 hours"
