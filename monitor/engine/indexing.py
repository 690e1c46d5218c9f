"""The driver's due-index half: when each state next needs a sweep, and what the store holds.

`Indexing` is the base of `monitor.engine.driver.Driver`: it records, per changed state, when a
sweep may next change it (`next_due`) and its expectation counts in a `DueIndex`; indexes the
states a partition already holds when the partition is taken over (a bounded amount per call);
and keeps the table-size counts. The driver calls `_index` for every state it changed before
sweeping or writing it.

Replay (`lazy=True`) indexes less: a state of a kind whose sweep only forgets
(`Kind.sweep_only_forgets`) is never swept by the clock there, only caught up when an event
touches it, so its due time is worked out then, from the state as it was left, and it never
enters the due index; and `may_sweep` tells the caller when a sweep would find nothing due, so
the call can be skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from mypy_extensions import mypyc_attr

from monitor.engine.due import DueIndex, next_due
from monitor.engine.kinds import KINDS
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import KeyState
from monitor.engine.store import StateStore
from monitor.engine.stored import read_stored, split_slot

INDEX_BATCH = 2_000  # stored states indexed per call


@dataclass(slots=True)
class Cached:
    """A decoded state and what the store holds for its slot."""

    partition: int
    tag: str
    state: KeyState
    rule_id: str  # of its slot (`split_slot(slot)[0]`), so the hot path need not split it
    stored: str | None = None  # the state's JSON text as last written under `tag`
    stored_partition: int = -1
    exists: bool = False  # some value (maybe another rule's) is in the store under the slot
    swept_at: datetime | None = None
    due: float | None = None  # as last indexed: next sweep (None: never), open, breached,
    waiting: int = 0  # and the deadline of the oldest open breach
    breached: int = 0
    oldest_breach: float | None = None
    size: int = 0  # bytes of what the store holds under the slot (0: nothing)
    stale: bool = False  # lazily indexed (replay), and changed since `due` was worked out


@mypyc_attr(allow_interpreted_subclasses=True)  # as `Driver`, its subclass
class Indexing:
    """The due index over the states a driver holds (see the module's docstring)."""

    def __init__(self, ruleset: Ruleset, store: StateStore, *, lazy: bool) -> None:
        self.store = store
        self.due = DueIndex()
        self.owned: set[int] = set()
        self.lazy = lazy
        self._cache: dict[str, Cached] = {}
        self._dirty: dict[str, Cached] = {}  # changed since the last commit
        self._unindexed: dict[str, Cached] = {}  # changed since the due index last saw them
        self._resweep = False
        self._indexing: dict[int, Iterator[tuple[str, bytes]]] = {}  # partitions being indexed
        # States stored and their bytes, per partition: counted by the indexing pass, then
        # kept up to date by every write (the table-size gauges).
        self.stored: dict[int, list[int]] = {}
        self._use(ruleset)

    def _use(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self._tags = {rule.id: rule.state_tag for rule in ruleset.rules.values()}
        # Rules whose sweep only forgets: swept by the forgetting clock.
        self._forgetful = frozenset(
            rule.id for rule in ruleset.rules.values() if KINDS[rule.kind].sweep_only_forgets
        )
        self.due.forgetful = self._forgetful
        # Rules whose states are indexed only when an event touches them (replay).
        self._lazy_rules = self._forgetful if self.lazy else frozenset()

    def _changed(self, rule_id: str, slot: str, entry: Cached) -> None:
        """Note that an event changed a state: indexed again before it is next used."""
        if rule_id in self._lazy_rules:
            entry.stale = True
        else:
            self._unindexed[slot] = entry

    def _is_due(self, slot: str, entry: Cached, now: datetime) -> bool:
        """Whether a sweep at `now` may change the state (an event is about to touch it)."""
        rule_id = entry.rule_id
        if rule_id in self._lazy_rules:
            if entry.stale:  # work its due time out now, from the state `_index` would see
                entry.stale = False
                rule = self.ruleset.rules[rule_id]
                state = entry.state
                due_at = None
                if not state.is_empty():
                    due_at = next_due(rule, state, self.ruleset.lateness, entry.swept_at)
                entry.due = None if due_at is None else due_at.timestamp()
            return entry.due is not None and entry.due <= now.timestamp()
        if slot in self._unindexed:
            self._index(slot, entry)
        due = self.due.due_of(slot)
        return due is not None and due <= now.timestamp()

    def may_sweep(self, partition: int, now: datetime) -> bool:
        """Whether `sweep(partition, now)` may find something to do (False: it would find
        nothing due and change nothing, so the call can be skipped)."""
        if self._indexing or not self.due.covers(partition) or self._resweep:
            return True
        self._index_changed()
        return self.due.has_due(partition, now.timestamp())

    def _index_changed(self) -> None:
        """Bring the due index up to date with the states changed since it last saw them."""
        unindexed, self._unindexed = self._unindexed, {}
        for slot, entry in unindexed.items():
            self._index(slot, entry)

    def _index(self, slot: str, entry: Cached) -> None:
        """Record when the state next needs a sweep, and its expectation counts."""
        self._unindexed.pop(slot, None)
        rule = self.ruleset.rules.get(entry.rule_id)
        state, partition = entry.state, entry.partition
        if rule is None or state.is_empty():
            self.due.remove(slot)
            if not entry.exists:  # nothing stored to delete: forget it now
                self._dirty.pop(slot, None)
                self._cache.pop(slot, None)
            return
        due_at = next_due(rule, state, self.ruleset.lateness, entry.swept_at)
        entry.due = due_at.timestamp() if due_at is not None else None  # None: never
        entry.waiting, entry.breached, oldest = state.expectation_counts()
        entry.oldest_breach = None if oldest is None else oldest.timestamp()
        if self.due.covers(partition):
            when = math.inf if entry.due is None else entry.due
            self.due.set(
                slot,
                partition,
                rule.id,
                when,
                entry.waiting,
                entry.breached,
                entry.oldest_breach,
            )

    def index_owned(self) -> None:
        """Index the stored states of owned partitions not indexed yet, at most `INDEX_BATCH`
        per call: the rest at the next sweeps. A state changed meanwhile is indexed when it is
        written, and the pass leaves it alone."""
        for partition in self.owned:
            if not self.due.covers(partition):
                self.due.cover(partition)
                self._indexing[partition] = iter(self.store.items(partition))
                self.stored[partition] = [0, 0]
        budget = INDEX_BATCH
        for partition, pending in list(self._indexing.items()):
            if partition not in self.owned:
                del self._indexing[partition]
                continue
            counts = self.stored.setdefault(partition, [0, 0])
            for slot, raw in pending:
                budget -= 1
                counts[0] += 1
                counts[1] += len(raw)
                if self.due.due_of(slot) is None:
                    self._index_stored(partition, slot, raw)
                if budget <= 0:
                    return
            del self._indexing[partition]
        self._resweep = False

    def _index_stored(self, partition: int, slot: str, raw: bytes) -> None:
        stored = read_stored(raw)
        if stored:
            due = stored.get("d", -math.inf) if not self._resweep else -math.inf
            due = math.inf if due is None else due
            rule_id = split_slot(slot)[0]
            self.due.set(
                slot,
                partition,
                rule_id,
                due,
                stored.get("o", 0),
                stored.get("b", 0),
                stored.get("w"),
            )

    def _count(self, partition: int, entries: int, size: int) -> None:
        """A write's change to the table size, once the partition's count has begun."""
        counts = self.stored.get(partition)
        if counts is not None:
            counts[0] += entries
            counts[1] += size

    def table_size(self) -> tuple[int, int]:
        """(states, bytes) stored for the partitions this worker owns."""
        owned = [c for p, c in self.stored.items() if p in self.owned]
        return sum(c[0] for c in owned), sum(c[1] for c in owned)

    def open_counts(self) -> tuple[Mapping[str, int], Mapping[str, int]]:
        """Open and breached expectations per rule, over the indexed partitions."""
        return self.due.open, self.due.breached
