"""What every kind's step receives: the rule, the key, the engine clock, and an error sink."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.engine.state import Finding, Firing, KeyState, event_key, identity_of
from monitor.events import EventRef
from monitor.rules.compiled import CompiledMatcher, CompiledRule
from monitor.rules.expressions import EvaluationError


@dataclass(slots=True)  # one per step and sweep
class StepContext:
    """One evaluation of one rule for one key at one engine time."""

    rule: CompiledRule
    key: str
    now: datetime
    lateness: timedelta
    errors: list[str] = field(default_factory=list)
    handoffs: list[timedelta] = field(default_factory=list)
    handoffs_in_time: int = 0  # of those, follow-ups by the deadline

    def holds(self, matcher: CompiledMatcher | None, bindings: Mapping[str, EventRef]) -> bool:
        """Whether the matcher's `where` holds; an evaluation error counts as no match."""
        if matcher is None:
            return False
        if matcher.where is None:
            return True
        try:
            return matcher.where.holds_for(bindings)
        except EvaluationError as exc:
            self.errors.append(f"{self.rule.id}.{matcher.slot}: {exc}")
            return False

    def finding(
        self,
        status: str,
        bindings: Mapping[str, EventRef],
        identity: tuple[str, ...],
        event_time: datetime,
        note: str | None = None,
        late_by: timedelta | None = None,
        raised_at: datetime | None = None,
    ) -> Finding:
        """A finding for this rule and key, detected now."""
        return Finding(
            rule=self.rule,
            key=self.key,
            status="resolved" if status == "resolved" else "firing",
            bindings=dict(bindings),
            identity=identity,
            event_time=event_time,
            detected_at=self.now,
            note=note,
            late_by=late_by,
            raised_at=raised_at,
        )


def realert_allows(ctx: StepContext, state: KeyState, event_time: datetime) -> bool:
    """Whether enough event time passed since the last alert for this rule+key."""
    gap = ctx.rule.realert or (ctx.rule.within.span if ctx.rule.within else None)
    if state.last_fired is None or gap is None:
        return True
    return abs(event_time - state.last_fired) >= gap


def fire(
    ctx: StepContext, state: KeyState, bindings: Mapping[str, EventRef], *events: EventRef
) -> Finding | None:
    """Raise a firing finding unless `realert` suppresses it; remember it for `resolve_on`."""
    event_time = max(e.time for e in events)
    if not realert_allows(ctx, state, event_time):
        return None
    identity = identity_of(*events)
    state.last_fired = event_time if state.last_fired is None else max(state.last_fired, event_time)
    if ctx.rule.resolve_on is not None:
        state.firing.append(
            Firing(identity=identity, bindings=dict(bindings), event_time=event_time)
        )
    return ctx.finding("firing", bindings, identity, event_time)


def resolve(ctx: StepContext, state: KeyState, event: EventRef) -> list[Finding]:
    """Resolve every open alert of this key that the `resolve_on` event answers."""
    if ctx.rule.resolve_on is None or not ctx.rule.resolve_on.accepts(event):
        return []
    found, still = [], []
    for firing in state.firing:
        bindings = {**firing.bindings, "resolve_on": event}
        if event.time >= firing.event_time and ctx.holds(ctx.rule.resolve_on, bindings):
            found.append(
                ctx.finding(
                    "resolved",
                    bindings,
                    firing.identity,
                    event.time,
                    note="remediated",
                    raised_at=firing.event_time,
                )
            )
        else:
            still.append(firing)
    state.firing = still
    return found


def is_duplicate(state: KeyState, event: EventRef) -> bool:
    """Whether this source+id was already processed for this rule+key (and remember it)."""
    marker = event_key(event)
    if marker in state.seen:
        return True
    state.seen[marker] = event.time
    return False


def forget_before(state: KeyState, horizon: datetime) -> None:
    """Drop remembered ids and held events older than `horizon` (event time). Most sweeps
    drop nothing of a kind: its entries are only copied when the oldest is older."""
    held, _, firing, _, seen = state.parts()
    if seen and min(seen.values()) < horizon:
        state.seen = {k: t for k, t in seen.items() if t >= horizon}
    if held and min(h.event.time for h in held) < horizon:
        state.held = [h for h in held if h.event.time >= horizon]
    if firing and min(f.event_time for f in firing) < horizon:
        state.firing = [f for f in firing if f.event_time >= horizon]


def forget_closed_windows(ctx: StepContext, state: KeyState, slot: str) -> None:
    """Drop held `slot` events whose window (opened at their time) closed more than the lateness
    ago. A plain window's end is its start plus `within`, which `forget_before` at the horizon
    already does; a business window's end depends on its start, so it is computed here."""
    window = ctx.rule.within
    if window is None or window.calendar is None:
        return
    cutoff = ctx.now - ctx.lateness
    state.held = [
        h for h in state.held if h.slot != slot or window.deadline(h.event.time) >= cutoff
    ]
