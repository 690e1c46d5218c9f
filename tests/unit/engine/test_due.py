"""Property: before a state's `next_due`, sweeping it changes nothing, so a worker may skip it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.engine import Ruleset
from monitor.engine.due import DueIndex, next_due
from monitor.engine.kinds import KINDS
from monitor.engine.kinds.during import DEFAULT_MAX_OPEN
from monitor.engine.state import Held, KeyState
from monitor.events import Event, EventRef
from monitor.rules import CompiledRule
from tests.unit.engine.harness import EngineHarness, event_order
from tests.unit.engine.test_order_independence import LATENESS, RULES, T0, histories

FAR = timedelta(days=400)
fractions = st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3)


def sweep_is_noop(ruleset: Ruleset, rule_id: str, key: str, state: KeyState, at: datetime) -> bool:
    copy = KeyState.from_json(state.to_json())
    findings = ruleset.sweep(ruleset.rules[rule_id], key, copy, at)
    return not findings and copy.to_json() == state.to_json()


def assert_quiet_until(
    ruleset: Ruleset,
    rule_id: str,
    key: str,
    state: KeyState,
    start: datetime,
    due: datetime | None,
    fractions: list[float],
) -> None:
    end = due if due is not None else start + FAR
    for fraction in fractions:
        at = start + (end - start) * fraction
        if start <= at < end:
            assert sweep_is_noop(ruleset, rule_id, key, state, at), (rule_id, start, at, due)


@settings(max_examples=150, deadline=None)
@given(histories(), fractions, fractions, st.sampled_from([60, 3600, 86400, 4 * 86400]))
def test_nothing_happens_before_the_next_due_time(
    events: list[Event], after_step: list[float], after_sweep: list[float], gap_s: int
) -> None:
    ruleset = Ruleset(RULES, lateness=LATENESS)
    detector = EngineHarness(ruleset)
    for event in sorted(events, key=event_order):
        now = event.time
        detector.advance(now)
        detector.process(event, now)
        for (rule_id, key), state in detector.states.items():
            rule = ruleset.rules[rule_id]
            due = next_due(rule, state, LATENESS)
            assert_quiet_until(ruleset, rule_id, key, state, now, due, after_step)
            swept_at = now + timedelta(seconds=gap_s) * after_step[0]
            swept = KeyState.from_json(state.to_json())
            ruleset.sweep(rule, key, swept, swept_at)
            due = next_due(rule, swept, LATENESS, swept_at)
            assert_quiet_until(ruleset, rule_id, key, swept, swept_at, due, after_sweep)


def test_a_pending_handoff_is_due_at_its_deadline() -> None:
    """Guard: the bound is tight for the common case, not merely 'some time later'."""
    ruleset = Ruleset(RULES, lateness=LATENESS)
    detector = EngineHarness(ruleset)
    closed = Event(
        id="d1", source="sales", type="deal.closed", time=T0, subject="c1", data={"deal_id": "D-1"}
    )
    detector.process(closed, T0)
    stalled = [(r, k) for (r, k) in detector.states if ruleset.rules[r].kind == "stalled"]
    assert stalled
    rule_id, key = stalled[0]
    state = detector.states[(rule_id, key)]
    rule = ruleset.rules[rule_id]
    # swept once just after the event: what is left to wait for is the deadline
    ruleset.sweep(rule, key, state, T0 + LATENESS + timedelta(seconds=1))
    due = next_due(rule, state, LATENESS, T0 + LATENESS + timedelta(seconds=1))
    assert due == min(e.due for e in state.expectations)
    assert not sweep_is_noop(ruleset, rule_id, key, state, due)


def test_an_old_event_brings_a_deadline_that_is_already_due() -> None:
    """A backfilled handoff whose deadline passed long ago must be swept at once."""
    ruleset = Ruleset(RULES, lateness=LATENESS)
    detector = EngineHarness(ruleset)
    closed = Event(
        id="d1", source="sales", type="deal.closed", time=T0, subject="c1", data={"deal_id": "D-1"}
    )
    late_now = T0 + timedelta(days=30)
    detector.process(closed, late_now)
    (rule_id, key), state = next(
        (slot, s) for slot, s in detector.states.items() if ruleset.rules[slot[0]].kind == "stalled"
    )
    due = next_due(ruleset.rules[rule_id], state, LATENESS)
    assert due is not None and due <= late_now
    assert ruleset.sweep(ruleset.rules[rule_id], key, state, late_now)


def reference_next_due(
    rule: CompiledRule, state: KeyState, swept_at: datetime | None
) -> datetime | None:
    """`next_due` as first written: every remembered moment plus each of its offsets (a held
    event's one offset when its kind says when its slot is dropped)."""
    horizon = rule.within.horizon if rule.within is not None else DEFAULT_MAX_OPEN
    kind = KINDS[rule.kind]

    def held_offsets(slot: str) -> tuple[timedelta, ...]:
        if slot in kind.held_for_lateness:
            return (LATENESS,)
        if slot in kind.held_for_window:
            return (horizon + LATENESS,)
        return (LATENESS, horizon + LATENESS)

    moments = [(h.event.time, held_offsets(h.slot)) for h in state.held]
    moments += [(e.due, (timedelta(0), horizon)) for e in state.expectations]
    moments += [(f.event_time, (horizon + LATENESS,)) for f in state.firing]
    moments += [(t, (horizon + LATENESS,)) for t in state.seen.values()]
    window = rule.within
    if window is not None and window.calendar is not None:
        moments += [(window.deadline(h.event.time), (LATENESS,)) for h in state.held]
    candidates = [m + o for m, offsets in moments for o in offsets]
    return min((c for c in candidates if swept_at is None or c >= swept_at), default=None)


@settings(max_examples=30, deadline=None)
@given(histories(), st.sampled_from([0, 60, 3600, 86400, 4 * 86400]))
def test_next_due_is_the_earliest_moment_plus_offset(events: list[Event], gap_s: int) -> None:
    ruleset = Ruleset(RULES, lateness=LATENESS)
    detector = EngineHarness(ruleset)
    for event in sorted(events, key=event_order):
        detector.process(event, event.time)
        for (rule_id, _key), state in detector.states.items():
            rule = ruleset.rules[rule_id]
            assert next_due(rule, state, LATENESS) == reference_next_due(rule, state, None)
            swept_at = event.time + timedelta(seconds=gap_s)
            got = next_due(rule, state, LATENESS, swept_at)
            assert got == reference_next_due(rule, state, swept_at)


@settings(max_examples=30, deadline=None)
@given(histories(), fractions)
def test_a_sweep_that_only_forgets_can_wait(events: list[Event], gaps: list[float]) -> None:
    """For kinds marked `sweep_only_forgets`, sweeping at t1 and then at t2 finds nothing and
    leaves what one sweep at t2 leaves: replay may put such sweeps off."""
    ruleset = Ruleset(RULES, lateness=LATENESS)
    detector = EngineHarness(ruleset)
    quiet = [r for r in RULES if KINDS[r.kind].sweep_only_forgets]
    assert quiet
    for event in sorted(events, key=event_order):
        detector.process(event, event.time)
        for (rule_id, key), state in detector.states.items():
            rule = ruleset.rules[rule_id]
            if rule not in quiet:
                continue
            t1 = event.time + FAR * gaps[0] / 8
            t2 = t1 + FAR * gaps[1] / 8
            twice, once = KeyState.from_json(state.to_json()), KeyState.from_json(state.to_json())
            assert not ruleset.sweep(rule, key, twice, t1)
            assert not ruleset.sweep(rule, key, twice, t2)
            assert not ruleset.sweep(rule, key, once, t2)
            assert twice == once


def test_forgetting_states_wait_for_their_own_clock_and_do_not_hold_up_deadlines() -> None:
    index = DueIndex(forgetful=frozenset({"contradiction"}))
    index.cover(0)
    for i in range(5):
        index.set(f"contradiction\x1fc{i}", 0, "contradiction", 100.0 + i, 0, 0)
    index.set("stalled\x1fc9", 0, "stalled", 150.0, 1, 0)
    # The wall clock is far on, the events read only up to 102: two forgotten, and the deadline
    # comes whatever the forgetting heap holds.
    assert index.pop_due(0, 1000.0, limit=10, forget_now=102.0) == [
        "stalled\x1fc9",
        "contradiction\x1fc0",
        "contradiction\x1fc1",
        "contradiction\x1fc2",
    ]
    assert index.pop_due(0, 1000.0, limit=10, forget_now=102.0) == []
    assert index.pop_due(0, 1000.0, limit=1) == ["contradiction\x1fc3"]  # no clock: the wall's
    assert index.has_due(0, 1000.0)


def test_a_held_event_is_due_when_its_kind_drops_it() -> None:
    """Guard: a promise (`first`) a contradiction holds is due at its horizon, a follow-up
    (`then`) after the lateness; a slot its kind does not name may go at either."""
    rule = next(
        r
        for r in RULES
        if r.kind == "contradiction" and r.within is not None and r.within.calendar is None
    )
    assert rule.within is not None
    horizon = rule.within.horizon
    ref = EventRef("e1", "billing", "any.type", T0, "c1", {})
    for slot, due in (("first", T0 + horizon + LATENESS), ("then", T0 + LATENESS)):
        state = KeyState(held=[Held(slot, ref)])
        assert next_due(rule, state, LATENESS) == due
        assert next_due(rule, state, LATENESS, due) == due
        assert next_due(rule, state, LATENESS, due + timedelta(seconds=1)) is None
    other = KeyState(held=[Held("other", ref)])
    assert next_due(rule, other, LATENESS) == T0 + LATENESS
    assert next_due(rule, other, LATENESS, T0 + LATENESS * 2) == T0 + horizon + LATENESS


def test_a_kind_drops_a_held_slot_at_one_moment() -> None:
    contradiction = KINDS["contradiction"]
    with pytest.raises(ValueError, match="one moment"):
        dataclasses.replace(contradiction, held_for_window=frozenset({"first", "then"}))


def test_an_open_interval_is_due_at_its_horizon_and_a_close_at_either() -> None:
    rule = next(r for r in RULES if r.kind == "during")
    horizon = rule.within.horizon if rule.within is not None else DEFAULT_MAX_OPEN
    ref = EventRef("e1", "support", "any.type", T0, "c1", {})
    opened, then = Held("open", ref), Held("then", ref)
    closed = Held("close", ref, link="support|e0")
    assert next_due(rule, KeyState(held=[opened]), LATENESS) == T0 + horizon + LATENESS
    assert next_due(rule, KeyState(held=[then]), LATENESS) == T0 + LATENESS
    assert next_due(rule, KeyState(held=[opened, closed]), LATENESS) == T0 + LATENESS
