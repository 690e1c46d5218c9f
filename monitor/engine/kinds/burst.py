"""`burst`: `threshold` matching events (or distinct values) for one key within `within`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from monitor.engine.context import StepContext, fire, forget_before, resolve
from monitor.engine.kinds.base import Kind
from monitor.engine.state import Finding, Held, KeyState
from monitor.events import EventRef
from monitor.rules.calendar import Window
from monitor.rules.compiled import CompiledMatcher
from monitor.rules.expressions import Condition, EvaluationError


@dataclass(frozen=True, slots=True)
class CompiledBurst:
    """A compiled `burst` rule's own fields."""

    match: CompiledMatcher
    threshold: int
    within: Window
    distinct: Condition | None = None


def step(ctx: StepContext, rule: CompiledBurst, state: KeyState, event: EventRef) -> list[Finding]:
    """Count matching events in the sliding window ending at this one; alert at the threshold."""
    findings: list[Finding] = []
    if rule.match.accepts(event) and ctx.holds(rule.match, {"match": event}):
        tag = _distinct_value(ctx, rule, event)
        state.held.append(Held(slot="match", event=event, tag=tag))
        in_window = [
            h
            for h in state.held
            if h.slot == "match" and rule.within.contains(h.event.time, event.time)
        ]
        members = _members(sorted(in_window, key=lambda h: h.event.time))
        if len(members) >= rule.threshold:
            bindings = {"match": event, **{f"match{i}": m for i, m in enumerate(members)}}
            finding = fire(ctx, state, bindings, *members)
            if finding is not None:
                values = _values(rule.distinct, members) if rule.distinct is not None else []
                findings.append(replace(finding, extra={"count": len(members), "values": values}))
    findings.extend(resolve(ctx, state, event))
    return findings


def _distinct_value(ctx: StepContext, rule: CompiledBurst, event: EventRef) -> str | None:
    """The value an event counts under (None when the rule counts every event)."""
    if rule.distinct is None:
        return None
    try:
        return repr(rule.distinct.value_for({"event": event, "match": event}))
    except EvaluationError as exc:
        ctx.errors.append(f"{ctx.rule.id}.distinct: {exc}")
        return "<error>"


def _values(distinct: Condition, members: list[EventRef]) -> list[object]:
    """The distinct values of the members, in time order, for the message (`{{ values }}`)."""
    values: list[object] = []
    for member in members:
        try:
            values.append(distinct.value_for({"event": member, "match": member}))
        except EvaluationError:
            values.append("<error>")
    return values


def _members(window: list[Held]) -> list[EventRef]:
    """The events that count: all of them, or the latest one per distinct value."""
    if all(h.tag is None for h in window):
        return [h.event for h in window]
    latest: dict[str | None, EventRef] = {h.tag: h.event for h in window}
    return sorted(latest.values(), key=lambda e: e.time)


def sweep(ctx: StepContext, rule: CompiledBurst, state: KeyState) -> list[Finding]:
    """Forget events that left the window."""
    forget_before(state, ctx.now - rule.within.horizon - ctx.lateness)
    return []


BURST = Kind(
    name="burst",
    form=CompiledBurst,
    slots=("match",),
    requires=("match", "threshold", "within"),
    scopes={"match": ("match",)},
    # `match*` are the members in time order: match0, match1, ...
    provides=("match", "match*", "count", "values"),
    step=step,
    sweep=sweep,
    sweep_only_forgets=True,
    held_for_window=frozenset({"match"}),
)
