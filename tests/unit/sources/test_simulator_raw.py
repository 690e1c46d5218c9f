"""The simulator's raw forms go back through the shipped mappings to the events they came from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import EventRef
from monitor.events.mapping import RawRecord, evaluate
from monitor.simulator import RAW_FORMS, Simulator
from monitor.sources import load_sources

SOURCES = Path(__file__).resolve().parents[3] / "sources"


@pytest.mark.parametrize("department", sorted(RAW_FORMS))
def test_raw_form_maps_back_to_the_same_event(department: str) -> None:
    mappings = load_sources([SOURCES]).mappings
    end = datetime(2026, 5, 10, tzinfo=UTC)
    events = Simulator(seed=3, conflict_share=0.5).backfill(end - timedelta(days=4), end, 400)
    raw_forms = [(e, RAW_FORMS[department](e)) for e in events]
    mapped = [(e, r) for e, r in raw_forms if r is not None]
    assert mapped, f"the simulator published nothing of {department} in raw form"
    assert all(e.department == department for e, _ in mapped)
    for original, (topic, key, value) in mapped:
        source = mappings.get(topic)
        assert source is not None, topic
        event = evaluate(source, RawRecord(topic, value, key))
        assert isinstance(event, EventRef)
        assert (event.source, event.type, event.subject) == (
            original.source,
            original.type,
            original.subject,
        )
        assert abs(event.time - original.time) < timedelta(seconds=1)  # seconds or ms on the wire
        for name, wanted in original.data.items():
            assert event.data[name] == wanted, (name, event.data, original.data)
