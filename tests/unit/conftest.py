"""Shared test vocabulary: a fixed base time, an event factory and the shipped rule pack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.events import Event
from monitor.rules import CompiledRule, load_rules

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RULES_DIR = Path(__file__).parents[2] / "rules"


def event(
    source: str,
    type: str,
    *,
    at: datetime = T0,
    subject: str = "c1",
    id: str | None = None,
    **data: Any,
) -> Event:
    """An event for customer `subject`; the id is derived from type and time unless given."""
    return Event(
        id=id or f"{type}@{at.isoformat()}",
        source=source,
        type=type,
        time=at,
        subject=subject,
        data=data,
    )


@pytest.fixture(scope="session")
def shipped_rules() -> list[CompiledRule]:
    """The rule pack in `rules/`, compiled once."""
    result = load_rules([RULES_DIR])
    assert result.issues == []
    return result.rules
