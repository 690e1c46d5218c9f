"""The driver over a dict store: what reaches the store, when, and in which bytes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.engine import Ruleset
from monitor.engine.driver import Admission, DictStore, Driver
from monitor.engine.due import next_due
from monitor.engine.state import KeyState
from monitor.engine.stored import encode_stored, read_stored, slot_of, stored_partition
from monitor.events import Event, Rejected, RejectReason
from monitor.events.codec import encode
from monitor.rules import CompiledRule, load_rules
from monitor.simulator import Simulator
from tests.unit.conftest import DAY, HOUR, MINUTE, T0, event

RULE = "sales-onboarding-handoff-stalled"
SLOT = slot_of(RULE, "c1")


def closed(deal: str = "d1") -> Event:
    return event("sales", "deal.closed", id=f"closed-{deal}", deal_id=deal)


@pytest.fixture
def driver(shipped_rules: list[CompiledRule]) -> Driver:
    return Driver(Ruleset(shipped_rules), DictStore())


def feed(driver: Driver, partition: int, *events: Event) -> list[str]:
    rule_ids: list[str] = []
    for e in events:
        for key, ids in driver.routes(e.ref()).items():
            found = driver.apply(partition, key, e.ref(), ids, e.time)
            rule_ids.extend(f.rule.id for f in found)
    return rule_ids


def record_puts(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The slots the driver's store is asked to write, in order (each write still happens)."""
    store = driver.store
    assert isinstance(store, DictStore)
    writes: list[str] = []
    put = store.put

    def recording_put(partition: int, slot: str, value: bytes) -> None:
        writes.append(slot)
        put(partition, slot, value)

    monkeypatch.setattr(store, "put", recording_put)
    return writes


def stored(driver: Driver, partition: int = 0) -> dict[str, bytes]:
    assert isinstance(driver.store, DictStore)
    return driver.store.partitions.get(partition, {})


def test_nothing_reaches_the_store_before_commit(driver: Driver) -> None:
    feed(driver, 0, closed())
    assert stored(driver) == {}
    assert driver.commit() == 1
    assert set(stored(driver)) == {SLOT}


def test_a_state_is_stored_as_the_json_the_table_always_held(driver: Driver) -> None:
    feed(driver, 3, closed())
    driver.commit()
    raw = stored(driver, 3)[SLOT]
    rule = driver.ruleset.rules[RULE]
    value = read_stored(raw)
    assert value is not None
    state = KeyState.from_json(value["s"])
    due = next_due(rule, state, driver.ruleset.lateness)
    assert due is not None
    assert raw == encode_stored(
        {"p": 3, "r": rule.state_tag, "s": state.to_json(), "d": due.timestamp(), "o": 1, "b": 0}
    )
    assert stored_partition(raw) == 3


def test_a_state_changed_many_times_in_a_batch_is_written_once(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = record_puts(driver, monkeypatch)
    feed(driver, 0, *[closed(f"d{n}") for n in range(20)])
    driver.commit()
    assert writes == [SLOT]


def test_an_unchanged_state_is_not_written_again(driver: Driver) -> None:
    feed(driver, 0, closed())
    driver.commit()
    feed(driver, 0, closed())  # a duplicate delivery changes nothing
    assert driver.commit() == 0


def test_states_are_read_back_from_the_store_after_a_reset(driver: Driver) -> None:
    feed(driver, 0, closed())
    driver.commit()
    driver.reset()
    driver.keep_partitions([0])
    assert feed(driver, 0, closed()) == []  # the stored state remembers the event: duplicate
    assert driver.ruleset.duplicates >= 1
    fired = driver.sweep(0, T0 + 3 * DAY + HOUR)
    assert [f.rule.id for f in fired] == [RULE]


def test_a_state_stored_by_another_rule_with_the_same_id_starts_empty(
    driver: Driver, shipped_rules: list[CompiledRule]
) -> None:
    feed(driver, 0, closed())
    driver.commit()
    raw = stored(driver)[SLOT]
    driver.store.put(0, SLOT, raw.replace(driver.ruleset.rules[RULE].state_tag.encode(), b"x"))
    driver.reset()
    assert feed(driver, 0, closed()) == []
    assert driver.ruleset.duplicates == 0  # not seen: the other rule's state was not read


def test_sweeps_touch_only_due_states_and_empty_states_are_deleted(driver: Driver) -> None:
    driver.keep_partitions([0])
    feed(driver, 0, closed())
    driver.commit()
    assert driver.sweep(0, T0 + HOUR) == []
    assert [f.rule.id for f in driver.sweep(0, T0 + 3 * DAY + MINUTE)] == [RULE]
    driver.commit()
    assert driver.due.open[RULE] == 0 and driver.due.breached[RULE] == 1
    driver.sweep(0, T0 + 400 * DAY)  # long past every horizon: the state is forgotten
    driver.commit()
    assert SLOT not in stored(driver)


def test_a_state_due_when_its_batch_ends_is_swept_then_and_written_once(
    driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = record_puts(driver, monkeypatch)
    driver.keep_partitions([0])
    feed(driver, 0, closed())  # an old event: its kickoff deadline passed long ago
    late = T0 + 3 * DAY + MINUTE
    assert [f.rule.id for f in driver.settle(late, late + HOUR)] == [RULE]  # newer events too
    driver.commit()
    assert writes == [SLOT]
    assert driver.sweep(0, late) == []  # the tick finds nothing left to do
    assert driver.commit() == 0
    assert driver.due.open[RULE] == 0 and driver.due.breached[RULE] == 1


def test_a_state_not_due_yet_is_left_to_the_ticks(driver: Driver) -> None:
    driver.keep_partitions([0])
    feed(driver, 0, closed())
    assert driver.settle(T0 + HOUR, T0 + HOUR) == []
    driver.commit()
    assert driver.sweep(0, T0 + HOUR) == []
    assert driver.due.open[RULE] == 1
    assert [f.rule.id for f in driver.sweep(0, T0 + 3 * DAY + MINUTE)] == [RULE]


def test_the_cache_stays_bounded(shipped_rules: list[CompiledRule]) -> None:
    driver = Driver(Ruleset(shipped_rules), DictStore(), cache_slots=10)
    feed(
        driver, 0, *[event("sales", "deal.closed", subject=f"c{n}", id=f"x{n}") for n in range(50)]
    )
    driver.commit()
    assert len(driver._cache) <= 10
    assert len(stored(driver)) == 50


def admission() -> Admission:
    return Admission(
        lateness=timedelta(minutes=5),
        max_age=timedelta(days=3650),
        max_ahead=timedelta(days=3650),
        max_bytes=1 << 20,
        max_depth=32,
    )


def test_the_late_event_rule_is_per_partition() -> None:
    gate = admission()
    gate.admit(0, encode(event("sales", "deal.closed", at=T0 + HOUR)), None, T0)
    late = encode(event("sales", "deal.closed", at=T0, id="late"))
    with pytest.raises(Rejected) as caught:
        gate.admit(0, late, None, T0)
    assert caught.value.reason == RejectReason.TOO_LATE
    assert gate.admit(1, late, None, T0).id == "late"  # another partition, its own watermark
    within = encode(event("sales", "deal.closed", at=T0 + HOUR - MINUTE, id="ooo"))
    gate.admit(0, within, None, T0)
    assert gate.late == {"sales": 1} and gate.out_of_order == {"sales": 1}
    assert gate.consumed == {("sales", "deal.closed"): 3}


def test_the_time_range_moves_with_each_batchs_clock() -> None:
    gate = replace(admission(), max_age=DAY, max_ahead=HOUR)
    old = encode(event("sales", "deal.closed", at=T0 - DAY, id="old"))
    assert gate.admit(0, old, None, T0).id == "old"  # exactly at the bound
    later = T0 + MINUTE  # the next batch's clock: `old` is now a minute too old
    with pytest.raises(Rejected) as caught:
        gate.admit(1, old, None, later)
    assert caught.value.reason == RejectReason.TIME_OUT_OF_RANGE
    ahead = encode(event("sales", "deal.closed", at=later + HOUR, id="ahead"))
    assert gate.admit(2, ahead, None, later).id == "ahead"
    with pytest.raises(Rejected):
        gate.admit(2, ahead, None, T0)  # an earlier clock again: the range follows it back


KEYED_BY_DEAL = """\
version: 1
rules:
  - id: deal-keyed
    title: A kickoff held twice for one deal
    kind: burst
    key: event.data.deal_id
    match: {source: onboarding, type: kickoff.held}
    threshold: 2
    within: 1d
"""


def test_routes_by_type_and_source_are_the_rule_sets_routes(
    shipped_rules: list[CompiledRule], tmp_path: Path
) -> None:
    """`Driver.routes` remembers, per (type, source), which rules key by subject; every event's
    routes are still what `Ruleset.routes` finds, also when a rule keys by a CEL expression."""
    (tmp_path / "keyed.yaml").write_text(KEYED_BY_DEAL)
    keyed = load_rules([tmp_path])
    assert not keyed.errors
    end = T0 + 3 * DAY
    events = Simulator(seed=2, customers=20).backfill(T0, end, 150)
    refs = [e.ref() for e in events]
    refs.append(replace(refs[0], subject=""))  # no key: no route
    for rules in (shipped_rules, [*shipped_rules, *keyed.rules]):
        driver = Driver(Ruleset(rules), DictStore())
        for ref in [*refs, *refs]:  # the second pass is served from the map
            expected: dict[str, list[str]] = {}
            for route in driver.ruleset.routes(ref):
                expected.setdefault(route.key, []).append(route.rule.id)
            assert driver.routes(ref) == expected
    kickoff = event("onboarding", "kickoff.held", deal_id="d9").ref()
    assert driver.routes(kickoff) == {"c1": [RULE], "d9": ["deal-keyed"]}


def test_settling_never_forgets_what_a_later_batch_of_a_backlog_still_matches(
    driver: Driver,
) -> None:
    """A backlog (a worker back after an outage longer than a rule's window): the customer's
    reply, then in the next batch the ticket closed 10 minutes later. Settling the first batch at
    the wall clock must not forget the reply, or the contradiction is never raised."""
    driver.keep_partitions([0])
    replied = event("support", "ticket.customer_replied", ticket_id="T-1")
    closed_at = T0 + 10 * MINUTE
    closed = event("support", "ticket.closed", at=closed_at, ticket_id="T-1")
    wall = T0 + 2 * HOUR  # both events are older than the rule's 30 minutes
    assert feed(driver, 0, replied) == []
    driver.settle(wall, wall)
    driver.commit()
    assert "ticket-closed-while-customer-replying" in feed(driver, 0, closed)


def test_settling_stops_at_the_batch_s_newest_event_less_the_lateness(driver: Driver) -> None:
    """A backlog: the deal closed four days ago and, in the next batch, its kickoff a day later.
    Settling the deal's batch at the wall clock would breach the handoff before the kickoff
    arrives; in event-time order it never breaches."""
    driver.keep_partitions([0])
    feed(driver, 0, closed())
    wall = T0 + 4 * DAY
    assert driver.settle(wall, T0) == []  # the deal is the batch's newest event
    driver.commit()
    kickoff = event("onboarding", "kickoff.held", at=T0 + DAY, deal_id="d1")
    assert feed(driver, 0, kickoff) == []
    assert driver.settle(wall, T0 + DAY) == []
    assert driver.due.breached[RULE] == 0


WAIVED = "billing-charges-waived-fee"  # contradiction: its sweep only forgets


def test_replay_works_out_a_forget_only_state_s_due_time_when_an_event_touches_it(
    shipped_rules: list[CompiledRule],
) -> None:
    lazy = Driver(Ruleset(shipped_rules), DictStore(), defer_forgetting=True)
    lazy.keep_partitions([0])
    assert lazy.may_sweep(0, T0)  # nothing indexed yet: the first sweep covers the partition
    lazy.sweep(0, T0)
    waiver = event("support", "fee.waiver_promised", fee_code="late_fee")
    for key, ids in lazy.routes(waiver.ref()).items():
        lazy.apply(0, key, waiver.ref(), ids, waiver.time, catch_up=True)
    slot = slot_of(WAIVED, "c1")
    # Never in the due index, and no sweep is due for it: the clock skips it.
    assert lazy.due.due_of(slot) is None
    assert not lazy.may_sweep(0, T0 + 400 * DAY)
    entry = lazy._cache[slot]
    expected = next_due(lazy.ruleset.rules[WAIVED], entry.state, lazy.ruleset.lateness)
    assert expected is not None
    # An event touching it works the due time out from the state as the event left it.
    assert not lazy._is_due(slot, entry, expected - MINUTE)
    assert entry.due == expected.timestamp()
    assert lazy._is_due(slot, entry, expected)


def test_may_sweep_is_false_only_when_a_sweep_would_find_nothing(driver: Driver) -> None:
    driver.keep_partitions([0])
    driver.sweep(0, T0)
    feed(driver, 0, closed())
    due = next_due(driver.ruleset.rules[RULE], driver._cache[SLOT].state, driver.ruleset.lateness)
    assert due is not None
    assert not driver.may_sweep(0, due - MINUTE)
    assert driver.sweep(0, due - MINUTE) == []
    assert driver.may_sweep(0, due)
    assert [f.rule.id for f in driver.sweep(0, due)] == [RULE]


def test_a_tick_forgets_by_the_event_time_read_not_the_wall_clock(driver: Driver) -> None:
    """A backlog after an outage: the customer's reply is read, a tick comes, then the ticket
    closed 10 minutes after the reply is read. At the wall clock both are older than the rule's
    30 minutes; a tick that forgot by it dropped the reply and the contradiction was lost."""
    driver.keep_partitions([0])
    replied = event("support", "ticket.customer_replied", ticket_id="T-1")
    closed_at = T0 + 10 * MINUTE
    ticket_closed = event("support", "ticket.closed", at=closed_at, ticket_id="T-1")
    wall = T0 + 2 * DAY
    assert feed(driver, 0, replied) == []
    driver.commit()
    assert driver.sweep(0, wall, forget_now=replied.time) == []
    driver.commit()
    assert "ticket-closed-while-customer-replying" in feed(driver, 0, ticket_closed)


def test_forgetting_by_the_wall_clock_would_have_lost_it(driver: Driver) -> None:
    """The same events swept without an event clock (as replay's and the tests' drivers do):
    the reply is forgotten, which is why the worker passes one."""
    driver.keep_partitions([0])
    replied = event("support", "ticket.customer_replied", ticket_id="T-1")
    ticket_closed = event("support", "ticket.closed", at=T0 + 10 * MINUTE, ticket_id="T-1")
    feed(driver, 0, replied)
    driver.commit()
    driver.sweep(0, T0 + 2 * DAY)
    driver.commit()
    assert "ticket-closed-while-customer-replying" not in feed(driver, 0, ticket_closed)


def test_deadlines_still_fire_by_the_wall_clock_beside_a_stopped_event_clock(
    driver: Driver,
) -> None:
    """A quiet partition's event clock stops; its deadlines (not forgetting) still come."""
    driver.keep_partitions([0])
    feed(driver, 0, closed())
    driver.commit()
    fired = driver.sweep(0, T0 + 4 * DAY, forget_now=T0)
    assert [f.rule.id for f in fired] == [RULE]
