"""The one driver of a rule set: admit -> route -> apply -> sweep, per batch, over a `StateStore`.

The worker (over its Faust table), replay, `cxmon test` and the unit tests all run events through
this module; only where state is kept and what the clock is differ.

Per batch, the contract is:
- `admit` decodes a record and applies the late-event rule of its input partition (the only
  place that rule is written); a refused record raises `Rejected` and changes nothing.
- `apply` and `sweep` change decoded states held in a bounded cache; nothing reaches the store.
- `commit` writes each state the batch changed to the store once, encoded once, and indexes
  when it next needs a sweep. Callers commit after the batch's alerts are delivered, so a batch
  that is interrupted before then leaves the store as it was (its events come again and are
  applied whole, duplicates being dropped by source and id).
- `StateStore.flush` then makes the writes durable (the worker's changelog); the caller decides
  when to await it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mypy_extensions import mypyc_attr

from monitor.engine.admission import Admission
from monitor.engine.indexing import Cached, Indexing
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding, KeyState
from monitor.engine.store import DictStore, StateStore
from monitor.engine.stored import (
    STATE_SEPARATOR,
    encode_parts,
    read_stored,
    split_slot,
    state_text,
    state_text_of,
)
from monitor.events import EventRef

__all__ = ["Admission", "DictStore", "Driver", "StateStore"]

log = logging.getLogger("cxmon")
DEFAULT_CACHE_SLOTS = 200_000  # decoded states kept between batches, at most
_PARTITION_CACHE = 100_000
# How much one sweep call may do, so that a reload (which makes every state due once) or a
# takeover of 200k states is spread over ticks instead of holding the event loop for tens of
# seconds (measured: 15.7 s in one call after a reload, 8.9 s indexing after a start).
SWEEP_BATCH = 500  # states swept per partition per call


@mypyc_attr(allow_interpreted_subclasses=True)  # tests subclass it (a reference that sweeps all)
class Driver(Indexing):
    """Routes events to rule+key states, applies and sweeps them, and commits them to a store.

    Not thread-safe: one per worker (or replay), used from one task.
    """

    def __init__(
        self,
        ruleset: Ruleset,
        store: StateStore,
        *,
        partition_of: Callable[[str], int] | None = None,
        cache_slots: int = DEFAULT_CACHE_SLOTS,
        max_state_bytes: int | None = None,
        defer_forgetting: bool = False,
    ) -> None:
        super().__init__(ruleset, store, lazy=defer_forgetting)
        self.partition_of_key = partition_of or (lambda _key: 0)
        self.cache_slots = cache_slots
        self.max_state_bytes = max_state_bytes
        # Replay's clock only moves forward and every apply catches up (`catch_up=True`): a
        # sweep that can only forget (`Kind.sweep_only_forgets`) is left to the next event that
        # touches the state, or not made at all; nothing is written, so nothing shows it.
        self.defer_forgetting = defer_forgetting
        self._partitions: dict[str, int] = {}

    # -- routing ---------------------------------------------------------------------------

    def routes(self, event: EventRef) -> dict[str, list[str]]:
        """The rule ids an event concerns, by the key each correlates it under."""
        subject_routes = self.ruleset.subject_routes(event)
        if subject_routes is not None:  # the usual case: every rule keys by subject
            return {event.subject: list(subject_routes)} if subject_routes and event.subject else {}
        by_key: dict[str, list[str]] = {}
        for route in self.ruleset.routes(event):
            rule_ids = by_key.get(route.key)
            if rule_ids is None:
                by_key[route.key] = [route.rule.id]
            else:
                rule_ids.append(route.rule.id)
        return by_key

    def partition_of(self, key: str) -> int:
        """The partition that holds a key's states (looked up once per key, in a bounded map)."""
        partition = self._partitions.get(key)
        if partition is None:
            if len(self._partitions) >= _PARTITION_CACHE:
                self._partitions.clear()
            partition = self._partitions[key] = self.partition_of_key(key)
        return partition

    # -- applying and sweeping ---------------------------------------------------------------

    def apply(
        self,
        partition: int,
        key: str,
        event: EventRef,
        rule_ids: Iterable[str],
        now: datetime,
        *,
        catch_up: bool = False,
    ) -> list[Finding]:
        """One event for the listed rules' states of `key` (held on `partition`).

        `catch_up`: sweep a state that is due at `now` before applying the event (an engine
        clock that moves with the events, as in replay, has not swept it yet).
        """
        findings: list[Finding] = []
        rules = self.ruleset.rules
        for rule_id in rule_ids:
            rule = rules.get(rule_id)
            if rule is None:
                continue  # removed by a reload since the event was routed
            slot = f"{rule_id}{STATE_SEPARATOR}{key}"  # `slot_of`, in line: once per rule and event
            entry = self._entry(partition, slot, rule_id)
            if catch_up and self._is_due(slot, entry, now):
                findings.extend(self.ruleset.sweep(rule, key, entry.state, now))
                self._cache[slot] = entry  # indexing may have let go of it
            findings.extend(self.ruleset.step(rule, key, entry.state, event, now))
            entry.partition = partition
            entry.swept_at = None
            self._dirty[slot] = entry
            self._changed(rule_id, slot, entry)
        return findings

    def sweep(
        self, partition: int, now: datetime, forget_now: datetime | None = None
    ) -> list[Finding]:
        """Fire due deadlines and expire state for the states of `partition` that are due.

        `forget_now`: the clock of the states whose sweep only forgets (contradiction, burst),
        never later than `now` (None: `now`). The worker passes the newest event time it has
        applied on the partition: forgetting by the wall clock dropped a backlog's held event
        older than the rule's window before its partner, a few batches later, could match it.
        """
        self.index_owned()
        self._index_changed()
        findings: list[Finding] = []
        rules = self.ruleset.rules
        forget_at = now if forget_now is None else min(now, forget_now)
        due = self.due.pop_due(partition, now.timestamp(), SWEEP_BATCH, forget_at.timestamp())
        for slot in due:
            rule_id, key = split_slot(slot)
            rule = rules.get(rule_id)
            if rule is None:  # removed by a reload
                self.store.delete(partition, slot)
                self.due.remove(slot)
                self._cache.pop(slot, None)
                continue
            forgets = rule_id in self._forgetful
            if self.defer_forgetting and forgets:
                continue  # still due: swept by `apply` if an event touches it
            entry = self._entry(partition, slot, rule_id)
            before = _shape(entry.state)
            at = forget_at if forgets else now
            findings.extend(self.ruleset.sweep(rule, key, entry.state, at))
            entry.swept_at = at
            self._unindexed[slot] = entry
            if _shape(entry.state) != before:  # most sweeps only move the next due time
                self._dirty[slot] = entry
        return findings

    def settle(self, now: datetime, newest: datetime | None) -> list[Finding]:
        """Sweep the states changed since the last commit that are due already: at `now`, but
        never past the batch's `newest` event time less the lateness (None: nothing applied).

        An old event (a backfill, a lagging producer) often brings a deadline or an expiry that
        has passed: swept here, in the batch that changed it, such a state is written once,
        instead of written, swept at the next tick and written again; its findings belong to the
        batch. Not past `newest`: an event of the same input partition up to the lateness older
        than that may come in the next batch and must find the state as it would have in
        event-time order (a deal's kickoff must not find its handoff breached by the end of the
        deal's own batch).
        """
        if newest is None:
            return []
        now = min(now, newest - self.ruleset.lateness)
        findings: list[Finding] = []
        at = now.timestamp()
        rules = self.ruleset.rules
        unindexed = self._unindexed
        for slot, entry in list(self._dirty.items()):
            if slot not in unindexed:
                continue
            self._index(slot, entry)
            if entry.due is None or entry.due > at or entry.state.is_empty():
                continue
            rule_id, key = split_slot(slot)
            rule = rules.get(rule_id)
            if rule is None or rule_id in self._forgetful:
                # Forgetting at once would drop what the batch just held when it is older than
                # the rule's window (a backlog after an outage): its partner event in the next
                # batch would find nothing. The ticks forget it, as they always did.
                continue
            findings.extend(self.ruleset.sweep(rule, key, entry.state, now))
            entry.swept_at = now
            unindexed[slot] = entry
        return findings

    def _entry(self, partition: int, slot: str, rule_id: str) -> Cached:
        tag = self._tags[rule_id]
        entry = self._cache.get(slot)
        if entry is not None and entry.tag == tag:
            return entry
        raw = self.store.get(partition, slot)
        stored = read_stored(raw)
        entry = Cached(
            partition, tag, KeyState(), rule_id, exists=raw is not None, size=len(raw or b"")
        )
        # A state stored under another tag belongs to an earlier rule with another kind or key.
        if stored and stored.get("r") == tag:
            entry.state = KeyState.from_json(stored["s"])
            entry.stored = state_text_of(stored)
            entry.stored_partition = stored.get("p", -1)
        self._cache[slot] = entry
        return entry

    # -- committing --------------------------------------------------------------------------

    def commit(self) -> int:
        """Write every state changed since the last commit to the store; returns how many."""
        dirty, self._dirty = self._dirty, {}
        written = 0
        for slot, entry in dirty.items():
            written += self._write(slot, entry)
        if len(self._cache) > self.cache_slots:
            excess = len(self._cache) - self.cache_slots // 2
            for slot in list(self._cache)[:excess]:
                if slot not in self._dirty:
                    del self._cache[slot]
        return written

    def _write(self, slot: str, entry: Cached) -> int:
        if slot in self._unindexed or entry.stale:
            entry.stale = False
            self._index(slot, entry)
        state, partition = entry.state, entry.partition
        if entry.rule_id not in self.ruleset.rules or state.is_empty():
            self._cache.pop(slot, None)
            if entry.exists:
                self.store.delete(partition, slot)
                self._count(partition, -1, -entry.size)
                entry.exists, entry.size = False, 0
                return 1
            return 0
        as_json = state_text(state)
        # The stored due time is only a hint for indexing after a rebalance, and an early one is
        # safe, so a state whose content did not change is not written again.
        if entry.exists and as_json == entry.stored and partition == entry.stored_partition:
            return 0
        raw = encode_parts(
            partition,
            entry.tag,
            as_json,
            entry.due,
            entry.waiting,
            entry.breached,
            entry.oldest_breach,
        )
        limit = self.max_state_bytes
        if limit is not None and len(raw) > limit and self._shrunk(entry, len(raw), limit):
            self._unindexed[slot] = entry  # store what is left instead
            return self._write(slot, entry)
        self.store.put(partition, slot, raw)
        self._count(partition, 0 if entry.exists else 1, len(raw) - entry.size)
        entry.stored, entry.stored_partition, entry.exists = as_json, partition, True
        entry.size = len(raw)
        return 1

    def _shrunk(self, entry: Cached, size: int, limit: int) -> bool:
        """Whether a state's record of `size` bytes, over `max_state_bytes` (`limit`), lost its
        oldest entries (counted as evictions) to fit: one record must stay small enough for the
        broker to take."""
        dropped = entry.state.shrink(limit - 512)  # room for the record's own fields
        if not dropped:
            return False  # nothing left to drop: store it as it is
        rule_id = entry.rule_id
        self.ruleset.evictions[rule_id] += dropped
        log.warning(
            "rule %s: a state was %d bytes, over max_state_bytes (%d); %d oldest entries dropped",
            rule_id,
            size,
            limit,
            dropped,
        )
        return True

    # -- partitions, rebalances and reloads ----------------------------------------------------

    def keep_partitions(self, owned: Iterable[int]) -> None:
        """Keep the partitions this worker owns now; forget what it held of the others."""
        owned = set(owned)
        if owned != self.owned:
            self._cache = {s: e for s, e in self._cache.items() if e.partition in owned}
        self.owned = owned
        self.due.keep_only(owned)

    def reset(self) -> None:
        """Forget every decoded state and the due index: the store is the truth again (after
        a rebalance). Changes not committed yet stay and are committed."""
        self._cache.clear()
        self.due.clear()

    def reload(self, ruleset: Ruleset) -> None:
        """Run a new rule set; states of rules whose tag is unchanged carry over. Every state is
        swept once under the new rules at the next sweep."""
        self.commit()
        self._use(ruleset)
        self._cache.clear()
        self.due.clear()
        self._resweep = True

    def states(self) -> Iterable[tuple[str, KeyState]]:
        """The decoded states held, by slot (all of them, when nothing was evicted)."""
        return [(slot, e.state) for slot, e in self._cache.items() if not e.state.is_empty()]


def _shape(state: KeyState) -> tuple[Any, ...]:
    """What a sweep can change in a state: it only drops entries, replaces an expectation with
    its breached copy, or sets `last_fired`; entries are immutable. Equal shapes before and
    after a sweep mean it changed nothing worth writing."""
    held, expectations, firing, last_fired, seen = state.parts()
    return (
        len(held),
        tuple(map(id, expectations)),
        len(firing),
        last_fired,
        len(seen),
    )
