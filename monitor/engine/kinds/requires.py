"""`requires`: a `then` occurs with no matching `first` in the `within` before it."""

from __future__ import annotations

from monitor.engine.context import (
    StepContext,
    fire,
    forget_before,
    forget_closed_windows,
    resolve,
)
from monitor.engine.kinds.base import Kind
from monitor.engine.kinds.contradiction import CompiledPair
from monitor.engine.state import Expectation, Finding, Held, KeyState
from monitor.events import EventRef


def step(ctx: StepContext, rule: CompiledPair, state: KeyState, event: EventRef) -> list[Finding]:
    """Remember preconditions; hold an unexplained `then` until no late `first` can explain it.

    A `then` without a precondition waits for the lateness (in event time) before it fires,
    because a `first` that happened earlier may still be on its way.
    """
    if rule.first.accepts(event) and ctx.holds(rule.first, {"first": event}):
        state.held.append(Held(slot="first", event=event))
        state.expectations = [
            e for e in state.expectations if not _explains(ctx, rule, event, e.opened_by)
        ]
    if rule.then.accepts(event):
        firsts = state.events_in("first")
        if not any(_explains(ctx, rule, first, event) for first in firsts):
            due = event.time + ctx.lateness
            state.expectations.append(Expectation(opened_by=event, due=due))
    return resolve(ctx, state, event)


def _explains(ctx: StepContext, rule: CompiledPair, first: EventRef, then: EventRef) -> bool:
    return rule.within.contains(first.time, then.time) and ctx.holds(
        rule.then, {"first": first, "then": then}
    )


def sweep(ctx: StepContext, rule: CompiledPair, state: KeyState) -> list[Finding]:
    """Fire unexplained events whose grace has passed; forget preconditions that expired."""
    findings: list[Finding] = []
    waiting: list[Expectation] = []
    for expectation in state.expectations:
        if expectation.due > ctx.now:
            waiting.append(expectation)
            continue
        then = expectation.opened_by
        finding = fire(ctx, state, {"then": then}, then)
        if finding is not None:
            findings.append(finding)
    state.expectations = waiting
    forget_before(state, ctx.now - rule.within.horizon - ctx.lateness)
    forget_closed_windows(ctx, state, "first")
    return findings


REQUIRES = Kind(
    name="requires",
    form=CompiledPair,
    slots=("first", "then"),
    requires=("first", "then", "within"),
    scopes={"first": ("first",), "then": ("first", "then")},
    provides=("then",),
    step=step,
    sweep=sweep,
    held_for_window=frozenset({"first"}),
)
