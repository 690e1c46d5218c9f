"""The running rule set: which rules an event concerns (indexed by type), and dispatch to each kind."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.engine.clock import DEFAULT_LATENESS
from monitor.engine.context import StepContext, is_duplicate
from monitor.engine.kinds import KINDS
from monitor.engine.state import Finding, KeyState
from monitor.events import Event, EventRef
from monitor.rules.compiled import CompiledMatcher, CompiledRule
from monitor.rules.expressions import EvaluationError

DEFAULT_MAX_STATE_ENTRIES = 5000
_ROUTE_CACHE = 10_000  # (type, source) pairs whose routes are remembered
_UNKNOWN = object()


@dataclass(frozen=True)
class RuleKey:
    """An event concerns `rule` under correlation `key` (what `Ruleset.routes` finds)."""

    rule: CompiledRule
    key: str


class Ruleset:
    """Rules indexed by event type, so an event only meets the rules that can use it.

    Not thread-safe; each worker task owns one. `eval_errors` counts CEL failures per rule,
    `evictions` the state entries dropped because a rule+key went over `max_state_entries`.
    """

    def __init__(
        self,
        rules: Iterable[CompiledRule],
        lateness: timedelta = DEFAULT_LATENESS,
        max_state_entries: int = DEFAULT_MAX_STATE_ENTRIES,
    ):
        self.rules: dict[str, CompiledRule] = {r.id: r for r in rules}
        self.lateness = lateness
        self.max_state_entries = max_state_entries
        self.eval_errors: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self.handoffs: list[tuple[str, float]] = []  # (rule id, seconds); the caller drains it
        self.handoffs_in_time: Counter[str] = Counter()  # of those, by the deadline; drained too
        self.duplicates = 0  # rule+key evaluations skipped as repeated deliveries; drained too
        # type -> [(rule, departments/sources that any of its slots accepts, None = any)]
        self._by_type: dict[str, list[tuple[CompiledRule, frozenset[str] | None]]] = defaultdict(
            list
        )
        # Rules with a matcher for any type (`where` alone) meet every event: a small bucket
        # apart, so the per-type lists of the others stay as they are.
        self._any_type: list[tuple[CompiledRule, frozenset[str] | None]] = []
        self._subject_routes: dict[tuple[str, str], tuple[str, ...] | None] = {}
        for rule in self.rules.values():
            if any(m.types is None for m in rule.matchers):
                self._any_type.append((rule, _sources(rule.matchers)))
                continue
            for type_name in sorted({t for m in rule.matchers for t in m.types or ()}):
                slots = [m for m in rule.matchers if m.types is not None and type_name in m.types]
                self._by_type[type_name].append((rule, _sources(slots)))

    def __len__(self) -> int:
        return len(self.rules)

    def routes(
        self, event: Event | EventRef, view: Mapping[str, Any] | None = None
    ) -> list[RuleKey]:
        """The rules this event concerns and the key each one correlates it under."""
        candidates = self._by_type.get(event.type)
        if self._any_type:
            candidates = [*(candidates or ()), *self._any_type]
        if not candidates:
            return []
        given = view is not None
        routes = []
        department = event.department
        for rule, sources in candidates:
            if sources is not None and department not in sources and event.source not in sources:
                continue
            if rule.key.program is None and not given:  # `subject`: no CEL view needed
                key = event.subject or None
            else:
                if view is None:
                    view = event.to_cel()
                try:
                    key = rule.key.key_of(view)
                except EvaluationError:
                    self.eval_errors[rule.id] += 1
                    continue
            if key is not None:
                routes.append(RuleKey(rule, key))
        return routes

    def subject_routes(self, event: Event | EventRef) -> tuple[str, ...] | None:
        """The ids of the rules an event concerns, when every one of them keys by `subject`
        (what `routes` finds, without evaluating anything); None when some rule computes its
        key with CEL. Looked up once per (type, source), in a bounded map."""
        at = (event.type, event.source)
        known = self._subject_routes.get(at, _UNKNOWN)
        if known is not _UNKNOWN:
            return known  # type: ignore[return-value]
        candidates = [*self._by_type.get(event.type, ()), *self._any_type]
        department = event.department
        ids: tuple[str, ...] | None = ()
        for rule, sources in candidates:
            if sources is not None and department not in sources and event.source not in sources:
                continue
            if rule.key.program is not None:
                ids = None
                break
            ids = (*(ids or ()), rule.id)
        if len(self._subject_routes) >= _ROUTE_CACHE:
            self._subject_routes.clear()
        self._subject_routes[at] = ids
        return ids

    def step(
        self, rule: CompiledRule, key: str, state: KeyState, event: EventRef, now: datetime
    ) -> list[Finding]:
        """Apply one event to one rule+key state (mutated in place); duplicates are ignored."""
        if is_duplicate(state, event):
            self.duplicates += 1
            return []
        ctx = StepContext(rule, key, now, self.lateness)
        findings = KINDS[rule.kind].step(ctx, rule.form, state, event)
        if ctx.errors or ctx.handoffs or ctx.handoffs_in_time:  # most steps: nothing to count
            self._count(ctx)
        dropped = state.trim(self.max_state_entries)
        if dropped:
            self.evictions[rule.id] += dropped
        return findings

    def sweep(self, rule: CompiledRule, key: str, state: KeyState, now: datetime) -> list[Finding]:
        """Advance one rule+key state to `now`: fire due deadlines, expire old state."""
        ctx = StepContext(rule, key, now, self.lateness)
        findings = KINDS[rule.kind].sweep(ctx, rule.form, state)
        if ctx.errors or ctx.handoffs or ctx.handoffs_in_time:
            self._count(ctx)
        return findings

    def _count(self, ctx: StepContext) -> None:
        if ctx.errors:
            self.eval_errors[ctx.rule.id] += len(ctx.errors)
        for took in ctx.handoffs:
            self.handoffs.append((ctx.rule.id, took.total_seconds()))
        if ctx.handoffs_in_time:
            self.handoffs_in_time[ctx.rule.id] += ctx.handoffs_in_time


def _sources(matchers: Iterable[CompiledMatcher]) -> frozenset[str] | None:
    """The departments/sources any of the matchers accepts (None: any)."""
    sources: frozenset[str] | None = frozenset()
    for matcher in matchers:
        if matcher.sources is None or sources is None:
            return None
        sources = sources | matcher.sources
    return sources
