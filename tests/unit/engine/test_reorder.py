"""The reorder buffer releases what one heap over every arrival would, in the same order."""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.engine.reorder import ReorderBuffer, order_key
from monitor.events import EventRef
from tests.unit.engine.test_order_independence import T0

LATENESS = timedelta(seconds=5)
arrivals = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40),  # seconds after T0: many equal times
        st.sampled_from(["billing", "sales"]),
        st.sampled_from(["a", "b", "c"]),  # equal keys: retries (with another payload: `n`)
    ),
    max_size=60,
)


def reference(events: list[EventRef]) -> list[list[str]]:
    """The buffer as first written: one heap of (order key, arrival number, event)."""
    heap: list[tuple[tuple[datetime, str, str], int, EventRef]] = []
    highest, out = T0 - timedelta(days=1), []
    for n, event in enumerate(events):
        heapq.heappush(heap, (order_key(event), n, event))
        highest = max(highest, event.time)
        released = []
        while heap and heap[0][0][0] < highest - LATENESS:
            released.append(heapq.heappop(heap)[2].data["n"])
        out.append(released)
    out.append([heapq.heappop(heap)[2].data["n"] for _ in range(len(heap))])
    return out


@settings(max_examples=300, deadline=None)
@given(arrivals)
def test_releases_what_one_heap_releases(raw: list[tuple[int, str, str]]) -> None:
    buffer = ReorderBuffer(LATENESS)
    events, got = [], []
    for n, (seconds, source, event_id) in enumerate(raw):
        event = EventRef(event_id, source, "t", T0 + timedelta(seconds=seconds), "c", {"n": n})
        if buffer.is_too_late(event):
            continue
        events.append(event)
        got.append([e.data["n"] for e in buffer.push(event)])
    got.append([e.data["n"] for e in buffer.drain()])
    assert got == reference(events)


def test_in_order_arrivals_wait_for_the_watermark() -> None:
    buffer = ReorderBuffer(LATENESS)
    first = EventRef("a", "s", "t", T0, "c", {})
    second = EventRef("b", "s", "t", T0 + LATENESS, "c", {})
    assert buffer.push(first) == []
    assert buffer.push(second) == []  # the watermark is T0: nothing is before it yet
    third = EventRef("c", "s", "t", T0 + LATENESS * 3, "c", {})
    assert buffer.push(third) == [first, second]
    assert buffer.drain() == [third]
