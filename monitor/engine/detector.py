"""An in-memory driver for a `Ruleset`: replay, rule tests and unit tests use it; the worker uses tables."""

from __future__ import annotations

from datetime import datetime

from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding, KeyState
from monitor.events import Event


class Detector:
    """Feeds events and clock ticks to a rule set, keeping every rule+key state in a dict."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.ruleset = ruleset
        self.states: dict[tuple[str, str], KeyState] = {}

    def process(self, event: Event, now: datetime) -> list[Finding]:
        """Apply one event to every rule it concerns."""
        findings: list[Finding] = []
        ref = event.ref()
        for route in self.ruleset.routes(event):
            slot = (route.rule.id, route.key)
            state = self.states.get(slot) or KeyState()
            findings.extend(self.ruleset.step(route.rule, route.key, state, ref, now))
            self.states[slot] = state
        return findings

    def advance(self, now: datetime) -> list[Finding]:
        """Move the clock: fire due deadlines and expire old state."""
        findings: list[Finding] = []
        for (rule_id, key), state in list(self.states.items()):
            rule = self.ruleset.rules.get(rule_id)
            if rule is None:
                del self.states[(rule_id, key)]
                continue
            findings.extend(self.ruleset.sweep(rule, key, state, now))
            if state.is_empty():
                del self.states[(rule_id, key)]
        return findings
