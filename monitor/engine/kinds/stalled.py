"""`stalled`: `within` passes after `first` with no matching `then` (and no `cancel`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from monitor.engine.context import StepContext, fire, forget_before, resolve
from monitor.engine.kinds.base import Kind
from monitor.engine.state import Expectation, Finding, Held, KeyState, identity_of
from monitor.events import EventRef
from monitor.rules.calendar import Window
from monitor.rules.compiled import CompiledMatcher


@dataclass(frozen=True, slots=True)
class CompiledStalled:
    """A compiled `stalled` rule's own fields."""

    first: CompiledMatcher
    then: CompiledMatcher
    within: Window
    cancel: CompiledMatcher | None = None


def step(
    ctx: StepContext, rule: CompiledStalled, state: KeyState, event: EventRef
) -> list[Finding]:
    """Open expectations on `first`; close them on `then` or `cancel` (resolving breached ones)."""
    findings: list[Finding] = []
    if rule.first.accepts(event) and ctx.holds(rule.first, {"first": event}):
        due = rule.within.deadline(event.time)
        early = [
            h.event
            for h in state.held
            if h.slot == "then"
            and event.time <= h.event.time
            and ctx.holds(rule.then, {"first": event, "then": h.event})
        ]
        if not early:
            state.expectations.append(Expectation(opened_by=event, due=due))
    if rule.then.accepts(event):
        kept, met = _settle(ctx, state, event, "then", rule.then)
        findings.extend(met)
        if len(kept) == len(state.expectations):
            state.held.append(
                Held(slot="then", event=event)
            )  # may answer a `first` still in flight
        state.expectations = kept
    if rule.cancel is not None and rule.cancel.accepts(event):
        kept, met = _settle(ctx, state, event, "cancel", rule.cancel)
        findings.extend(met)
        state.expectations = kept
    findings.extend(resolve(ctx, state, event))
    return findings


def _settle(
    ctx: StepContext, state: KeyState, event: EventRef, slot: str, matcher: CompiledMatcher
) -> tuple[list[Expectation], list[Finding]]:
    kept: list[Expectation] = []
    findings: list[Finding] = []
    for expectation in state.expectations:
        first = expectation.opened_by
        if event.time < first.time or not ctx.holds(matcher, {"first": first, slot: event}):
            kept.append(expectation)
            continue
        if slot == "then":
            ctx.handoffs.append(event.time - first.time)
        if expectation.breached_at is None:
            if event.time <= expectation.due:
                if slot == "then":
                    ctx.handoffs_in_time += 1
                continue  # answered in time (or cancelled before the SLA): nothing to say
            # Late, but before a sweep noticed the deadline: the breach happened all the same.
            breach = fire(ctx, state, {"first": first}, first)
            if breach is None:
                continue  # covered by a recent alert for this key (realert)
            findings.append(_as_breach(breach, expectation))
        late_by = event.time - expectation.due
        if slot == "cancel":
            note = "cancelled after the SLA was breached"
        elif late_by > timedelta(0):
            note = "follow-up arrived late"
        else:
            note = "follow-up was on time but reached the monitor late"
        findings.append(
            ctx.finding(
                "resolved",
                {"first": first, slot: event},
                identity_of(first),
                event.time,
                note=note,
                late_by=late_by,
                raised_at=expectation.due,
            )
        )
    return kept, findings


def sweep(ctx: StepContext, rule: CompiledStalled, state: KeyState) -> list[Finding]:
    """Fire every expectation whose deadline has passed; forget what is too old to matter."""
    findings: list[Finding] = []
    pending: list[Expectation] = []
    for expectation in state.expectations:
        if expectation.breached_at is None and expectation.due <= ctx.now:
            finding = fire(ctx, state, {"first": expectation.opened_by}, expectation.opened_by)
            if finding is None:
                continue  # covered by a recent alert for this key (realert); nothing to resolve
            findings.append(_as_breach(finding, expectation))
            if expectation.due + rule.within.horizon >= ctx.now:  # a late follow-up may come
                pending.append(replace(expectation, breached_at=ctx.now))
        elif (
            expectation.breached_at is not None and expectation.due + rule.within.horizon < ctx.now
        ):
            continue  # a follow-up this late is not expected any more
        else:
            pending.append(expectation)
    state.expectations = pending
    forget_before(state, ctx.now - rule.within.horizon - ctx.lateness)
    state.held = [h for h in state.held if h.event.time >= ctx.now - ctx.lateness]
    return findings


def _as_breach(finding: Finding, expectation: Expectation) -> Finding:
    return replace(finding, event_time=expectation.due, extra={"due": expectation.due})


STALLED = Kind(
    name="stalled",
    form=CompiledStalled,
    slots=("first", "then", "cancel"),
    requires=("first", "then", "within"),
    scopes={"first": ("first",), "then": ("first", "then"), "cancel": ("first", "cancel")},
    provides=("first", "then", "cancel", "due"),
    holds_expectations=True,
    step=step,
    sweep=sweep,
    held_for_lateness=frozenset({"then"}),
)
