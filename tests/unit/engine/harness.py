"""The driver as the engine tests use it: one partition, a dict store, the clock given per call."""

from __future__ import annotations

from datetime import datetime

from monitor.engine import Finding, KeyState, Ruleset
from monitor.engine.driver import DictStore, Driver
from monitor.engine.reorder import order_key
from monitor.engine.stored import split_slot
from monitor.events import Event, EventRef


def event_order(event: Event) -> tuple[datetime, str, str]:
    """`order_key` for an `Event`: the order of the reference the engine is given."""
    return order_key(event.ref())


class EngineHarness:
    """Feeds events and clock ticks to `monitor.engine.driver.Driver`, as the worker does."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.driver = Driver(ruleset, DictStore())
        self.driver.keep_partitions([0])

    def process(self, event: Event | EventRef, now: datetime) -> list[Finding]:
        """Apply one event to every rule it concerns, at engine time `now`."""
        ref = event if isinstance(event, EventRef) else event.ref()
        findings: list[Finding] = []
        for key, rule_ids in self.driver.routes(ref).items():
            findings.extend(self.driver.apply(0, key, ref, rule_ids, now))
        return findings

    def advance(self, now: datetime) -> list[Finding]:
        """Move the clock: sweep the states that are due (deadlines, expiry)."""
        return self.driver.sweep(0, now)

    @property
    def states(self) -> dict[tuple[str, str], KeyState]:
        """Every non-empty rule+key state, by (rule id, key)."""
        return {split_slot(slot): state for slot, state in self.driver.states()}
