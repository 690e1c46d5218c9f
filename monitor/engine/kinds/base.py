"""What a rule kind is: ONE declaration, read by the schema, the compiler, the ruleset, metrics
and the CLI. Adding a kind is writing one module that declares one `Kind` and listing it in
`monitor.engine.kinds` (or `register`ing it, as a test's toy kind does)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from monitor.engine.context import StepContext
from monitor.engine.state import Finding, KeyState
from monitor.events import EventRef
from monitor.rules.compiled import CompiledMatcher

F = TypeVar("F")
# The matcher slot every kind accepts: the remediation event that resolves an open alert.
RESOLVE_ON = "resolve_on"


@dataclass(frozen=True)
class Kind(Generic[F]):
    """A rule kind.

    `form` is the typed compiled form of a rule of this kind: a frozen dataclass whose fields are
    the kind's slots (`CompiledMatcher`) and settings (`within`, `threshold`, `distinct`), the
    required ones without a default. `slots` are its matcher slots in order, `requires` the
    fields a rule must set, `scopes` which slots each slot's `where` may read (a later slot sees
    the earlier ones), `provides` the names its message template can read besides the common
    ones (`*` ends a prefix: `match*`). `step(ctx, form, state, event)` applies one event to one rule+key state in
    place and returns findings; `sweep(ctx, form, state)` advances that state to `ctx.now`
    (deadlines fire, old entries go). Both are called with the state of one rule and one key,
    never concurrently. `holds_expectations`: its open expectations are handoffs that ops watch
    (gauged as open and breached, with time-to-handoff). `sweep_only_forgets`: its sweep finds
    nothing and only drops entries older than a cutoff that moves with `ctx.now`, so sweeping
    at t1 and then at t2 leaves what sweeping at t2 alone leaves (replay may put it off until
    the state is next touched). `held_for_lateness` and `held_for_window` name the slots whose
    held events its sweep drops only once they are older than the lateness, or older than the
    horizon plus the lateness (or, for a business window, once it closed more than the lateness
    ago), and touches otherwise never: `next_due` then waits for that one moment instead of both
    (a held event of another slot counts at either).
    """

    name: str
    form: type[F]
    slots: tuple[str, ...]
    requires: tuple[str, ...]
    scopes: Mapping[str, tuple[str, ...]]
    provides: tuple[str, ...]
    step: Callable[[StepContext, F, KeyState, EventRef], list[Finding]]
    sweep: Callable[[StepContext, F, KeyState], list[Finding]]
    holds_expectations: bool = False
    sweep_only_forgets: bool = False
    held_for_lateness: frozenset[str] = frozenset()
    held_for_window: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        uses = set(self.uses)
        if not set(self.slots) <= uses or not set(self.requires) <= uses:
            raise ValueError(f"kind {self.name!r}: slots and required fields must be in its form")
        if set(self.scopes) != set(self.slots):
            raise ValueError(f"kind {self.name!r}: every slot, and only slots, needs a scope")
        if self.held_for_lateness & self.held_for_window:
            raise ValueError(f"kind {self.name!r}: a held slot is dropped at one moment, not two")

    @property
    def uses(self) -> tuple[str, ...]:
        """Every field a rule of this kind may set besides the common ones, in form order."""
        return tuple(f.name for f in dataclasses.fields(self.form))  # type: ignore[arg-type]

    @property
    def optional(self) -> tuple[str, ...]:
        """The fields a rule of this kind may leave out."""
        return tuple(name for name in self.uses if name not in self.requires)

    def scope(self, slot: str) -> tuple[str, ...]:
        """What `slot.where` may read: its scope, or for `resolve_on` every slot and itself."""
        return self.scopes.get(slot, (*self.slots, slot))

    def build(self, values: Mapping[str, Any]) -> F:
        """The compiled form from compiled field values (absent optional fields take defaults)."""
        return self.form(**{name: values[name] for name in self.uses if name in values})


def slot_matchers(form: object) -> tuple[CompiledMatcher, ...]:
    """The matchers a compiled form holds, in field order."""
    values = (getattr(form, f.name) for f in dataclasses.fields(form))  # type: ignore[arg-type]
    return tuple(v for v in values if isinstance(v, CompiledMatcher))
