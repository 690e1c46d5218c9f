"""`during`: a `then` occurs between an `open` and its `close` (an upsell during an open P1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.engine.context import StepContext, fire, forget_before, resolve
from monitor.engine.kinds.base import Kind
from monitor.engine.state import Finding, Held, KeyState, event_key
from monitor.events import EventRef
from monitor.rules.calendar import Window
from monitor.rules.compiled import CompiledMatcher

DEFAULT_MAX_OPEN = timedelta(days=30)
# Held slots that link to an open interval (`Held.link` is the `open` event's key): the event
# that closed it, and a marker that it already alerted (whose event is the `open` itself).
CLOSE = "close"
FIRED = "fired"


@dataclass(frozen=True, slots=True)
class CompiledDuring:
    """A compiled `during` rule's own fields."""

    open: CompiledMatcher
    close: CompiledMatcher
    then: CompiledMatcher
    within: Window | None = None


def step(ctx: StepContext, rule: CompiledDuring, state: KeyState, event: EventRef) -> list[Finding]:
    """Track open intervals; alert once per interval for a `then` inside it."""
    findings: list[Finding] = []
    if rule.open.accepts(event) and ctx.holds(rule.open, {"open": event}):
        state.held.append(Held(slot="open", event=event))
        # `then` events that arrived before their (late) `open` are held for the lateness.
        for held in state.events_in("then"):
            if held.time >= event.time and not _closed_before(state, event, held):
                _alert(ctx, state, event, held, findings)
    if rule.close.accepts(event):
        for opened in state.events_in("open"):
            if event.time >= opened.time and ctx.holds(
                rule.close, {"open": opened, "close": event}
            ):
                state.held.append(Held(slot=CLOSE, event=event, link=event_key(opened)))
    if rule.then.accepts(event):
        for opened in state.events_in("open"):
            if (
                opened.time <= event.time
                and not _closed_before(state, opened, event)
                and ctx.holds(rule.then, {"open": opened, "then": event})
            ):
                _alert(ctx, state, opened, event, findings)
        state.held.append(Held(slot="then", event=event))
    findings.extend(resolve(ctx, state, event))
    return findings


def _alert(
    ctx: StepContext, state: KeyState, opened: EventRef, then: EventRef, out: list[Finding]
) -> None:
    link = event_key(opened)
    if ctx.rule.realert is None and any(h.slot == FIRED and h.link == link for h in state.held):
        return  # once per open interval unless the rule sets `realert`
    finding = fire(ctx, state, {"open": opened, "then": then}, opened, then)
    if finding is not None:
        state.held.append(Held(slot=FIRED, event=opened, link=link))
        out.append(finding)


def _closed_before(state: KeyState, opened: EventRef, moment: EventRef) -> bool:
    link = event_key(opened)
    return any(
        h.slot == CLOSE and h.link == link and h.event.time <= moment.time for h in state.held
    )


def sweep(ctx: StepContext, rule: CompiledDuring, state: KeyState) -> list[Finding]:
    """Forget closed intervals, intervals open longer than `within`, and old held events."""
    span = rule.within.horizon if rule.within else DEFAULT_MAX_OPEN
    horizon = ctx.now - span - ctx.lateness
    recent = ctx.now - ctx.lateness
    closes = [h for h in state.held if h.slot == CLOSE]
    closed = {h.link for h in closes}
    keep: list[Held] = []
    for held in state.held:
        if held.slot == "then" and held.event.time < recent:
            continue
        if held.slot == "open" and event_key(held.event) in closed:
            link = event_key(held.event)
            if all(h.event.time < recent for h in closes if h.link == link):
                continue
        keep.append(held)
    live_opens = {event_key(h.event) for h in keep if h.slot == "open"}
    state.held = [h for h in keep if h.link is None or h.link in live_opens]
    forget_before(state, horizon)
    return []


DURING = Kind(
    name="during",
    form=CompiledDuring,
    slots=("open", "close", "then"),
    requires=("open", "close", "then"),
    scopes={"open": ("open",), "close": ("open", "close"), "then": ("open", "then")},
    provides=("open", "then"),
    step=step,
    sweep=sweep,
    # An `open` goes at its horizon or once a close of it is older than the lateness (the
    # close's own moment), a `fired` marker with its open; a `close` may go at either.
    held_for_lateness=frozenset({"then"}),
    held_for_window=frozenset({"open", FIRED}),
)
