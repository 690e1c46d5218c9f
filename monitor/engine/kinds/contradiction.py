"""`contradiction`: a `then` event occurs while a matching `first` for the key is at most `within` older."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.engine.context import (
    StepContext,
    fire,
    forget_before,
    forget_closed_windows,
    resolve,
)
from monitor.engine.kinds.base import Kind
from monitor.engine.state import Finding, Held, KeyState
from monitor.events import EventRef
from monitor.rules.calendar import Window
from monitor.rules.compiled import CompiledMatcher


@dataclass(frozen=True, slots=True)
class CompiledPair:
    """A compiled rule's `first`, `then` and `within` (`contradiction` and `requires`)."""

    first: CompiledMatcher
    then: CompiledMatcher
    within: Window


def step(ctx: StepContext, rule: CompiledPair, state: KeyState, event: EventRef) -> list[Finding]:
    """Record promises, match contradicting events against them (in either arrival order)."""
    findings: list[Finding] = []
    if rule.first.accepts(event) and ctx.holds(rule.first, {"first": event}):
        state.held.append(Held(slot="first", event=event))
        # A `then` that arrived before its (late) `first` is held for the lateness; match it now.
        for held in state.events_in("then"):
            if rule.within.contains(event.time, held.time) and ctx.holds(
                rule.then, {"first": event, "then": held}
            ):
                _add(findings, fire(ctx, state, {"first": event, "then": held}, event, held))
    if rule.then.accepts(event):
        promises = sorted(state.events_in("first"), key=lambda e: e.time, reverse=True)
        for promise in promises:
            if promise.id == event.id and promise.source == event.source:
                continue
            if rule.within.contains(promise.time, event.time) and ctx.holds(
                rule.then, {"first": promise, "then": event}
            ):
                _add(findings, fire(ctx, state, {"first": promise, "then": event}, promise, event))
                break
        state.held.append(Held(slot="then", event=event))
    findings.extend(resolve(ctx, state, event))
    return findings


def sweep(ctx: StepContext, rule: CompiledPair, state: KeyState) -> list[Finding]:
    """Forget promises whose window closed and held follow-ups older than the lateness."""
    horizon = ctx.now - rule.within.horizon - ctx.lateness
    forget_before(state, horizon)
    forget_closed_windows(ctx, state, "first")
    state.held = [
        h for h in state.held if h.slot == "first" or h.event.time >= ctx.now - ctx.lateness
    ]
    return []


def _add(findings: list[Finding], finding: Finding | None) -> None:
    if finding is not None:
        findings.append(finding)


CONTRADICTION = Kind(
    name="contradiction",
    form=CompiledPair,
    slots=("first", "then"),
    requires=("first", "then", "within"),
    scopes={"first": ("first",), "then": ("first", "then")},
    provides=("first", "then"),
    step=step,
    sweep=sweep,
    sweep_only_forgets=True,
    held_for_lateness=frozenset({"then"}),
    held_for_window=frozenset({"first"}),
)
