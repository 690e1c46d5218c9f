"""`during`: a `then` occurs between an `open` and its `close` (an upsell during an open P1)."""

from __future__ import annotations

from datetime import timedelta

from monitor.engine.context import StepContext, fire, forget_before, resolve
from monitor.engine.state import Finding, Held, KeyState, event_key
from monitor.events import EventRef

DEFAULT_MAX_OPEN = timedelta(days=30)
FIRED = "fired"  # held marker: this open interval already alerted (the `events` is the open)


def step(ctx: StepContext, state: KeyState, event: EventRef) -> list[Finding]:
    """Track open intervals; alert once per interval for a `then` inside it."""
    rule = ctx.rule
    assert rule.open is not None and rule.close is not None and rule.then is not None
    findings: list[Finding] = []
    if rule.open.accepts(event) and ctx.holds(rule.open, {"open": event}):
        state.held.append(Held(slot="open", event=event))
        # `then` events that arrived before their (late) `open` are held for the lateness.
        for held in state.events_in("then"):
            if held.time >= event.time and not _closed_before(ctx, state, event, held):
                _alert(ctx, state, event, held, findings)
    if rule.close.accepts(event):
        for opened in state.events_in("open"):
            if event.time >= opened.time and ctx.holds(
                rule.close, {"open": opened, "close": event}
            ):
                state.held.append(Held(slot=f"close:{event_key(opened)}", event=event))
    if rule.then.accepts(event):
        for opened in state.events_in("open"):
            if opened.time <= event.time and not _closed_before(ctx, state, opened, event):
                if ctx.holds(rule.then, {"open": opened, "then": event}):
                    _alert(ctx, state, opened, event, findings)
        state.held.append(Held(slot="then", event=event))
    findings.extend(resolve(ctx, state, event))
    return findings


def _alert(
    ctx: StepContext, state: KeyState, opened: EventRef, then: EventRef, out: list[Finding]
) -> None:
    marker = f"{FIRED}:{event_key(opened)}"
    if any(h.slot == marker for h in state.held) and ctx.rule.realert is None:
        return  # once per open interval unless the rule sets `realert`
    finding = fire(ctx, state, {"open": opened, "then": then}, opened, then)
    if finding is not None:
        state.held.append(Held(slot=marker, event=opened))
        out.append(finding)


def _closed_before(ctx: StepContext, state: KeyState, opened: EventRef, moment: EventRef) -> bool:
    slot = f"close:{event_key(opened)}"
    return any(h.slot == slot and h.event.time <= moment.time for h in state.held)


def sweep(ctx: StepContext, state: KeyState) -> list[Finding]:
    """Forget closed intervals, intervals open longer than `within`, and old held events."""
    span = ctx.rule.within.horizon if ctx.rule.within else DEFAULT_MAX_OPEN
    horizon = ctx.now - span - ctx.lateness
    closed = {h.slot.split(":", 1)[1] for h in state.held if h.slot.startswith("close:")}
    keep: list[Held] = []
    for held in state.held:
        if held.slot == "then" and held.event.time < ctx.now - ctx.lateness:
            continue
        if held.slot == "open" and event_key(held.event) in closed:
            if all(
                h.event.time < ctx.now - ctx.lateness
                for h in state.held
                if h.slot == f"close:{event_key(held.event)}"
            ):
                continue
        keep.append(held)
    live_opens = {event_key(h.event) for h in keep if h.slot == "open"}
    state.held = [
        h for h in keep if h.slot in ("open", "then") or h.slot.split(":", 1)[1] in live_opens
    ]
    forget_before(state, horizon)
    return []
