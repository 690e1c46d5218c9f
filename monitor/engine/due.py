"""When a rule+key state next needs a sweep, so a worker sweeps only what is due.

Every kind's sweep acts on a remembered time `t` once the clock passes `t` plus an offset that
depends on what `t` is: an expectation's deadline fires at the deadline and is dropped a horizon
later (when no late follow-up is expected any more); a held event is dropped after the lateness
(a follow-up held for a late `first`) or after the horizon plus the lateness (a promise, an open
interval), the one its kind names for its slot (`Kind.held_for_lateness`, `held_for_window`) or
else either; remembered ids and open alerts are forgotten after the horizon plus the lateness. The
earliest of those moments is when sweeping this state can change anything; before it, a sweep
is a no-op (a hypothesis property in tests/unit/engine/test_due.py checks this against every
kind's sweep). Erring early is safe (a sweep is idempotent), erring late is not. A sweep at `s`
has done everything due by `s`, so after one only the moments from `s` on count; after an event,
every moment counts, since an old event (a backfill, say) can bring a deadline that has already
passed.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from monitor.engine.kinds import KINDS
from monitor.engine.kinds.during import DEFAULT_MAX_OPEN
from monitor.engine.state import Held, KeyState
from monitor.rules.compiled import CompiledRule


def next_due(
    rule: CompiledRule, state: KeyState, lateness: timedelta, swept_at: datetime | None = None
) -> datetime | None:
    """The first moment at which a sweep may change `state` (None: never). `swept_at`: when
    the state was last swept, if that is the last thing that happened to it."""
    window = rule.within
    horizon = window.horizon if window is not None else DEFAULT_MAX_OPEN
    after_held, at_deadline, forgotten, after_lateness = _offsets(horizon, lateness)
    held, expectations, firing, _, seen = state.parts()
    best: datetime | None = None
    if held:
        best = _held_due(rule, held, swept_at, after_held, forgotten, after_lateness)
        if window is not None and window.calendar is not None:
            # a held event's business window ends at a computed time (`forget_closed_windows`)
            deadlines = [window.deadline(h.event.time) for h in held]
            best = _earliest(best, deadlines, (lateness,), swept_at)
    if expectations:
        best = _earliest(best, [e.due for e in expectations], at_deadline, swept_at)
    if firing:
        best = _earliest(best, [f.event_time for f in firing], forgotten, swept_at)
    if seen:
        best = _earliest(best, seen.values(), forgotten, swept_at)
    return best


def _earliest(
    best: datetime | None,
    moments: Iterable[datetime],
    offsets: tuple[timedelta, ...],
    swept_at: datetime | None,
) -> datetime | None:
    """The earlier of `best` and the group's first moment plus offset (from `swept_at`)."""
    if swept_at is None:  # every moment counts: the earliest with the smallest offset
        candidate: datetime | None = min(moments) + offsets[0]
    else:
        candidate = _first_from(moments, offsets, swept_at)
    if candidate is not None and (best is None or candidate < best):
        return candidate
    return best


def _held_due(
    rule: CompiledRule,
    held: list[Held],
    swept_at: datetime | None,
    either: tuple[timedelta, ...],
    window: tuple[timedelta, ...],
    lateness: tuple[timedelta, ...],
) -> datetime | None:
    """The first moment a sweep may drop a held event. The kind says which slots' events go
    after the lateness and which at the horizon (`Kind.held_for_lateness`, `held_for_window`);
    any other slot's events may go at either."""
    kind = KINDS.get(rule.kind)
    short = kind.held_for_lateness if kind is not None else frozenset()
    long = kind.held_for_window if kind is not None else frozenset()
    best: datetime | None = None
    for entry in held:
        slot = entry.slot
        offsets = lateness if slot in short else window if slot in long else either
        moment = entry.event.time
        candidate: datetime | None = None
        if swept_at is None:
            candidate = moment + offsets[0]
        else:
            for offset in offsets:
                if moment + offset >= swept_at:
                    candidate = moment + offset
                    break
        if candidate is not None and (best is None or candidate < best):
            best = candidate
    return best


@lru_cache(maxsize=256)  # a few (horizon, lateness) pairs per rule set
def _offsets(horizon: timedelta, lateness: timedelta) -> tuple[tuple[timedelta, ...], ...]:
    """After how long a sweep acts on a held event, a deadline, a remembered id or alert, and
    a held event that only waits for the lateness (each ascending)."""
    return (
        tuple(sorted((lateness, horizon + lateness))),
        tuple(sorted((timedelta(0), horizon))),
        (horizon + lateness,),
        (lateness,),
    )


def _first_from(
    moments: Iterable[datetime], offsets: tuple[timedelta, ...], start: datetime
) -> datetime | None:
    """The earliest `moment + offset` at or after `start` (offsets ascending)."""
    best: datetime | None = None
    for moment in moments:
        for offset in offsets:
            candidate = moment + offset
            if candidate >= start:
                if best is None or candidate < best:
                    best = candidate
                break
    return best


_SLACK = 10_000  # stale heap entries tolerated beyond twice the states indexed


@dataclass(slots=True)  # one per state indexed
class _Entry:
    partition: int
    rule_id: str
    due: float  # epoch seconds; -inf: sweep at the next tick
    open: int
    breached: int
    queued: bool = True  # a heap entry (due, slot) for it is waiting to be popped


@dataclass
class DueIndex:
    """Which stored states are due for a sweep, per partition, and how many expectations are open.

    A worker keeps one over the states of the partitions it owns, so a clock tick costs the
    states that are due, not every state it holds. Stale heap entries are skipped when popped.
    States whose sweep only forgets (`Kind.sweep_only_forgets`) wait in a heap of their own per
    partition, popped by a clock of their own (`pop_due`'s `forget_now`): a worker forgets by
    the event time it has read, not the wall clock, so a backlog's held event is still there
    when its partner is read.
    """

    _entries: dict[str, _Entry] = field(default_factory=dict)
    _heaps: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    _forgetting: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    # The rules whose sweep only forgets: set with a rule set, before anything is indexed
    # (a slot's rule never changes, so neither does its heap).
    forgetful: frozenset[str] = frozenset()
    open: Counter[str] = field(default_factory=Counter)
    breached: Counter[str] = field(default_factory=Counter)
    # rule -> slot -> the deadline (epoch seconds) of the slot's oldest open breach
    _breaches: dict[str, dict[str, float]] = field(default_factory=dict)

    def covers(self, partition: int) -> bool:
        """Whether this partition's states have been indexed."""
        return partition in self._heaps

    def cover(self, partition: int) -> None:
        """Mark a partition as indexed (its states follow through `set`)."""
        self._heaps.setdefault(partition, [])
        self._forgetting.setdefault(partition, [])

    def set(
        self,
        slot: str,
        partition: int,
        rule_id: str,
        due: float,
        open: int,
        breached: int,
        oldest_breach: float | None = None,
    ) -> None:
        """Record (or replace) a stored state's due time and expectation counts, and the
        deadline of its oldest open breach (epoch seconds), if any."""
        entry = self._entries.get(slot)
        if entry is None or entry.rule_id != rule_id:
            self.remove(slot)
            entry = self._entries[slot] = _Entry(partition, rule_id, due, open, breached)
            push = True
        else:  # most states are re-indexed often: update in place, push only a new due time
            push = not entry.queued or entry.due != due or entry.partition != partition
            entry.partition, entry.due = partition, due
            open, entry.open = open - entry.open, open
            breached, entry.breached = breached - entry.breached, breached
        if open:
            self.open[rule_id] += open
        if breached:
            self.breached[rule_id] += breached
        if oldest_breach is not None:
            self._breaches.setdefault(rule_id, {})[slot] = oldest_breach
        elif rule_id in self._breaches:
            self._breaches[rule_id].pop(slot, None)
        if push:
            entry.queued = True
            heaps = self._forgetting if rule_id in self.forgetful else self._heaps
            heap = heaps.setdefault(partition, [])
            heapq.heappush(heap, (due, slot))
            if len(heap) > 2 * len(self._entries) + _SLACK:
                self._compact(partition)

    def _compact(self, partition: int) -> None:
        """Drop a heap's stale entries: a state re-indexed with a later due time leaves its
        earlier entry behind, and far-off ones (a remembered id forgotten in 30 days) would
        otherwise pile up with every event, making each push and pop slower than the last."""
        for heaps, forgets in ((self._heaps, False), (self._forgetting, True)):
            heaps[partition] = heap = [
                (e.due, slot)
                for slot, e in self._entries.items()
                if e.queued
                and e.partition == partition
                and (e.rule_id in self.forgetful) == forgets
            ]
            heapq.heapify(heap)

    def remove(self, slot: str) -> None:
        """Forget a state that was deleted."""
        entry = self._entries.pop(slot, None)
        if entry is not None:
            self.open[entry.rule_id] -= entry.open
            self.breached[entry.rule_id] -= entry.breached
            self._breaches.get(entry.rule_id, {}).pop(slot, None)

    def oldest_breaches(self) -> dict[str, float]:
        """Per rule, the deadline (epoch seconds) of the oldest open breach indexed."""
        return {rule: min(slots.values()) for rule, slots in self._breaches.items() if slots}

    def due_of(self, slot: str) -> float | None:
        """When the state in `slot` is next due (None: not indexed)."""
        entry = self._entries.get(slot)
        return None if entry is None else entry.due

    def has_due(self, partition: int, now: float) -> bool:
        """Whether `pop_due(partition, now)` may return something (a stale heap entry counts)."""
        heap = self._heaps.get(partition)
        if heap and heap[0][0] <= now:
            return True
        heap = self._forgetting.get(partition)
        return bool(heap and heap[0][0] <= now)

    def pop_due(
        self, partition: int, now: float, limit: int | None = None, forget_now: float | None = None
    ) -> list[str]:
        """The slots of `partition` due at `now`, each once (at most `limit`: the others stay
        due for the next call); they are set again when stored. States whose sweep only forgets
        are due by `forget_now` instead, when given (never later than `now`)."""
        due = self._pop(self._heaps.get(partition), partition, now, limit)
        clock = now if forget_now is None else min(now, forget_now)
        rest = None if limit is None else limit - len(due)
        if rest is None or rest > 0:
            due += self._pop(self._forgetting.get(partition), partition, clock, rest)
        return due

    def _pop(
        self,
        heap: list[tuple[float, str]] | None,
        partition: int,
        now: float,
        limit: int | None,
    ) -> list[str]:
        due: list[str] = []
        if not heap or heap[0][0] > now:
            return due  # the usual tick: nothing due
        while heap and heap[0][0] <= now and (limit is None or len(due) < limit):
            when, slot = heapq.heappop(heap)
            entry = self._entries.get(slot)
            if (
                entry is not None
                and entry.queued
                and entry.due == when
                and entry.partition == partition
            ):
                entry.queued = False
                due.append(slot)
        return due

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Drop everything about partitions this worker no longer owns."""
        keep = set(partitions)
        gone = {p for p in self._heaps if p not in keep}
        if not gone:
            return  # every entry's partition has a heap: nothing to drop (the usual tick)
        for partition in gone:
            del self._heaps[partition]
            self._forgetting.pop(partition, None)
        for slot in [s for s, e in self._entries.items() if e.partition in gone]:
            self.remove(slot)

    def clear(self) -> None:
        """Forget everything (after a rebalance the table is the truth again)."""
        self._entries.clear()
        self._heaps.clear()
        self._forgetting.clear()
        self.open.clear()
        self.breached.clear()
        self._breaches.clear()
