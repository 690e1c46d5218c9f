"""Property: arrival order within the lateness and duplicate deliveries never change the alerts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alerts import alert_from
from monitor.engine import Ruleset
from monitor.engine.reorder import ReorderBuffer
from monitor.events import Event
from monitor.rules import load_rules
from tests.unit.engine.harness import EngineHarness, event_order

RULES = load_rules([Path(__file__).resolve().parents[3] / "rules"]).rules
T0 = datetime(2026, 5, 1, 9, tzinfo=UTC)
LATENESS = timedelta(minutes=5)
EPSILON = timedelta(microseconds=1)

SHAPES: list[tuple[str, str, dict[str, Any]]] = [
    ("support", "fee.waiver_promised", {"fee_code": "late_fee"}),
    ("billing", "invoice.charged", {"fee_code": "late_fee", "amount": 25}),
    ("billing", "invoice.charged", {"fee_code": "setup_fee", "amount": 10}),
    ("sales", "deal.closed", {"deal_id": "D-1"}),
    ("onboarding", "kickoff.held", {"deal_id": "D-1"}),
    ("sales", "deal.cancelled", {"deal_id": "D-1"}),
    ("support", "incident.opened", {"incident_id": "I-1", "priority": "P1"}),
    ("support", "incident.resolved", {"incident_id": "I-1"}),
    ("marketing", "upsell.sent", {"campaign": "x"}),
    ("sales", "call.made", {}),
    ("marketing", "email.sent", {}),
    ("support", "call.made", {}),
    ("billing", "email.sent", {}),
    ("sales", "contract.signed", {}),
    ("billing", "invoice.issued", {"amount": 5, "invoice_id": "I-9"}),
]


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Up to 40 events for 3 customers over ~5 days, with time gaps of seconds to days."""
    count = draw(st.integers(min_value=1, max_value=40))
    minute = 0
    events: list[Event] = []
    for index in range(count):
        minute += draw(st.sampled_from([0, 1, 2, 3, 30, 600, 1500, 3000]))
        source, type_, data = draw(st.sampled_from(SHAPES))
        events.append(
            Event(
                id=f"e{index}",
                source=source,
                type=type_,
                time=T0 + timedelta(minutes=minute),
                subject=draw(st.sampled_from(["c1", "c2", "c3"])),
                data=data,
            )
        )
    return events


def shuffled_within_lateness(events: list[Event], seed: int) -> list[Event]:
    """A plausible arrival order: each event delayed by up to the lateness."""
    rng = random.Random(seed)
    delayed = [
        (e.time + timedelta(seconds=rng.uniform(0, 299)), i, e) for i, e in enumerate(events)
    ]
    return [e for _, _, e in sorted(delayed, key=lambda item: (item[0], item[1]))]


def with_duplicates(events: list[Event], seed: int) -> list[Event]:
    """Some records delivered twice, the copy right after the original (at-least-once)."""
    rng = random.Random(seed)
    out: list[Event] = []
    for event in events:
        out.append(event)
        if rng.random() < 0.3:
            out.append(event)
    return out


def alerts_for(arrivals: list[Event]) -> list[tuple[str, str, str, str, datetime]]:
    """Run arrivals through a reorder buffer and the engine on an event-time clock."""
    detector = EngineHarness(Ruleset(RULES, lateness=LATENESS))
    buffer = ReorderBuffer(LATENESS)
    findings = []
    for event in arrivals:
        ref = event.ref()
        assert not buffer.is_too_late(ref)
        for ready in buffer.push(ref):
            findings += detector.advance(ready.time - EPSILON)
            findings += detector.process(ready, ready.time)
        findings += detector.advance(buffer.watermark - EPSILON)
    for ready in buffer.drain():
        findings += detector.advance(ready.time - EPSILON)
        findings += detector.process(ready, ready.time)
    findings += detector.advance(buffer.highest + timedelta(days=60))
    alerts = [alert_from(f) for f in findings]
    return sorted((a.rule_id, a.key, a.status, a.fingerprint, a.event_time) for a in alerts)


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(min_value=0, max_value=10_000))
def test_out_of_order_and_duplicate_arrivals_give_the_sorted_alerts(
    events: list[Event], seed: int
) -> None:
    in_order = sorted(events, key=event_order)
    arrivals = with_duplicates(shuffled_within_lateness(events, seed), seed)
    assert alerts_for(arrivals) == alerts_for(in_order)


def test_the_property_can_fail_without_the_buffer() -> None:
    """Guard: the comparison is sensitive — processing arrivals directly differs here."""
    waiver = Event(
        id="w",
        source="support",
        type="fee.waiver_promised",
        time=T0,
        subject="c1",
        data={"fee_code": "late_fee"},
    )
    charge_1 = Event(
        id="b1",
        source="billing",
        type="invoice.charged",
        time=T0 + timedelta(minutes=2),
        subject="c1",
        data={"fee_code": "late_fee", "amount": 25},
    )
    charge_2 = charge_1.model_copy(update={"id": "b2", "time": T0 + timedelta(minutes=3)})
    direct = EngineHarness(Ruleset(RULES, lateness=LATENESS))
    fired = [
        alert_from(f).fingerprint
        for e in (waiver, charge_2, charge_1)
        for f in direct.process(e, e.time)
    ]
    expected = [a[3] for a in alerts_for([waiver, charge_1, charge_2]) if a[2] == "firing"]
    assert fired != expected


@settings(max_examples=100, deadline=None)
@given(histories())
def test_no_state_outlives_the_longest_window(events: list[Event]) -> None:
    detector = EngineHarness(Ruleset(RULES, lateness=LATENESS))
    for event in sorted(events, key=event_order):
        detector.advance(event.time)
        detector.process(event, event.time)
    longest = max(r.within.horizon for r in RULES if r.within is not None)
    # a breached stalled expectation waits one more window for a late follow-up
    detector.advance(max(e.time for e in events) + 2 * longest + LATENESS + timedelta(days=1))
    assert detector.states == {}
