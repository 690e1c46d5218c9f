"""`burst`: `threshold` matching events (or distinct values) for one key within `within`."""

from __future__ import annotations

from dataclasses import replace

from monitor.engine.context import StepContext, fire, forget_before, resolve
from monitor.engine.state import Finding, Held, KeyState
from monitor.events import EventRef
from monitor.rules.expressions import EvaluationError


def step(ctx: StepContext, state: KeyState, event: EventRef) -> list[Finding]:
    """Count matching events in the sliding window ending at this one; alert at the threshold."""
    rule = ctx.rule
    assert rule.match is not None and rule.within is not None and rule.threshold is not None
    findings: list[Finding] = []
    if rule.match.accepts(event) and ctx.holds(rule.match, {"match": event}):
        tag = _distinct_value(ctx, event)
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
                values = _values(ctx, members) if rule.distinct is not None else []
                findings.append(replace(finding, extra={"count": len(members), "values": values}))
    findings.extend(resolve(ctx, state, event))
    return findings


def _distinct_value(ctx: StepContext, event: EventRef) -> str | None:
    """The value an event counts under (None when the rule counts every event)."""
    distinct = ctx.rule.distinct
    if distinct is None:
        return None
    try:
        return repr(distinct.value_for({"event": event, "match": event}))
    except EvaluationError as exc:
        ctx.errors.append(f"{ctx.rule.id}.distinct: {exc}")
        return "<error>"


def _values(ctx: StepContext, members: list[EventRef]) -> list[object]:
    """The distinct values of the members, in time order, for the message (`{{ values }}`)."""
    assert ctx.rule.distinct is not None
    values: list[object] = []
    for member in members:
        try:
            values.append(ctx.rule.distinct.value_for({"event": member, "match": member}))
        except EvaluationError:
            values.append("<error>")
    return values


def _members(window: list[Held]) -> list[EventRef]:
    """The events that count: all of them, or the latest one per distinct value."""
    if all(h.tag is None for h in window):
        return [h.event for h in window]
    latest: dict[str | None, EventRef] = {h.tag: h.event for h in window}
    return sorted(latest.values(), key=lambda e: e.time)


def sweep(ctx: StepContext, state: KeyState) -> list[Finding]:
    """Forget events that left the window."""
    assert ctx.rule.within is not None
    forget_before(state, ctx.now - ctx.rule.within.horizon - ctx.lateness)
    return []
