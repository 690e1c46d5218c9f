"""A rule kind is one declaration: a toy kind registered here is loaded, compiled, run, gauged and
listed without touching any other module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts.model import alert_from
from monitor.engine import Ruleset
from monitor.engine.context import StepContext, fire, forget_before
from monitor.engine.kinds import KINDS, Kind, register, unregister
from monitor.engine.state import Finding, KeyState
from monitor.events import EventRef
from monitor.metrics import Metrics
from monitor.rules import load_rules
from monitor.rules.calendar import Window
from monitor.rules.compiled import CompiledMatcher
from monitor.rules.schema import RuleFileSpec
from tests.unit.conftest import T0, event
from tests.unit.engine.harness import EngineHarness


@dataclass(frozen=True)
class CompiledEcho:
    """The toy kind's own fields: one slot and a window."""

    match: CompiledMatcher
    within: Window


def step(ctx: StepContext, rule: CompiledEcho, state: KeyState, event: EventRef) -> list[Finding]:
    """Every matching event fires at once."""
    if not (rule.match.accepts(event) and ctx.holds(rule.match, {"match": event})):
        return []
    finding = fire(ctx, state, {"match": event}, event)
    return [] if finding is None else [finding]


def sweep(ctx: StepContext, rule: CompiledEcho, state: KeyState) -> list[Finding]:
    """Forget what left the window."""
    forget_before(state, ctx.now - rule.within.horizon)
    return []


ECHO = Kind(
    name="echo",
    form=CompiledEcho,
    slots=("match",),
    requires=("match", "within"),
    scopes={"match": ("match",)},
    provides=("match",),
    holds_expectations=True,
    step=step,
    sweep=sweep,
)

RULE = """\
version: 1
rules:
  - id: echo-refund
    title: Echo every large refund
    kind: echo
    owners: [billing]
    match: {source: billing, type: refund.issued, where: "match.data.amount > 100"}
    within: 1d
    message: "{{ key }} got {{ match.data.amount }} back"
"""


@pytest.fixture
def echo() -> Iterator[Kind[CompiledEcho]]:
    register(ECHO)
    yield ECHO
    unregister(ECHO.name)


def test_a_registered_toy_kind_is_loaded_run_and_gauged(
    echo: Kind[CompiledEcho], tmp_path: Path
) -> None:
    (tmp_path / "echo.yaml").write_text(RULE)
    loaded = load_rules([tmp_path])
    assert loaded.issues == []
    [rule] = loaded.rules
    assert isinstance(rule.form, CompiledEcho) and rule.matchers == (rule.form.match,)
    detector = EngineHarness(Ruleset([rule]))
    small, large = (
        event("billing", "refund.issued", at=T0, id=f"r{n}", amount=n) for n in (5, 500)
    )
    assert detector.process(small, T0) == []
    [finding] = detector.process(large, T0)
    assert (finding.rule.id, finding.key, finding.status) == ("echo-refund", "c1", "firing")
    assert alert_from(finding).message == "c1 got 500 back"
    registry = CollectorRegistry()
    Metrics(registry).init_rules([rule])
    assert registry.get_sample_value("cxmon_rules_loaded", {"kind": "echo"}) == 1
    assert registry.get_sample_value("cxmon_open_expectations", {"rule": "echo-refund"}) == 0


def test_the_toy_kind_checks_its_fields_and_scopes(
    echo: Kind[CompiledEcho], tmp_path: Path
) -> None:
    bad = RULE.replace("within: 1d", "threshold: 3").replace("match.data", "then.data")
    (tmp_path / "echo.yaml").write_text(bad)
    found = [(i.location.line, i.code) for i in load_rules([tmp_path]).issues]
    assert found == [
        (5, "RULE_KIND_FIELDS"),  # needs `within`
        (7, "UNKNOWN_NAME"),  # `then` is no slot of this kind
        (8, "RULE_KIND_FIELDS"),  # `threshold` has no meaning here
        (9, "TEMPLATE_NAME"),  # nor in its message
    ]


def test_kinds_are_listed_once_for_the_schema() -> None:
    schema = RuleFileSpec.model_json_schema()["$defs"]["RuleSpec"]["properties"]["kind"]
    assert (
        schema["enum"]
        == list(KINDS)
        == [
            "contradiction",
            "stalled",
            "requires",
            "during",
            "burst",
        ]
    )


def test_an_unregistered_kind_is_a_wrong_type(tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text(RULE)
    [issue] = load_rules([tmp_path]).issues
    assert issue.code == "WRONG_TYPE" and "'burst'" in issue.message
