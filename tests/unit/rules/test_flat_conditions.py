"""A condition evaluated on flattened fields gives what the original expression gives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.events import EventRef
from monitor.rules.expressions import Condition, EvaluationError

T0 = datetime(2026, 5, 1, tzinfo=UTC)
EXPRESSIONS = [
    "then.data.fee_code == first.data.fee_code && then.data.amount > 0",
    "then.data.ticket_id == first.data.ticket_id && !has(then.data.reply_id)",
    "then.time > timestamp(first.data.promised_by) || first.department == 'billing'",
    "first.data.fee_code in ['late_fee', 'setup_fee'] && first.data.amount.size() == 0",
    "has(first.data.amount) || then.data.amount > 10",
]
DATA: list[dict[str, Any]] = [
    {},
    {"fee_code": "late_fee", "amount": 25, "ticket_id": "t1"},
    {"fee_code": "late_fee", "amount": 0, "ticket_id": "t1", "reply_id": "r"},
    {"fee_code": None, "amount": "x", "promised_by": "2026-04-30T00:00:00Z"},
    {"fee_code": "setup_fee", "amount": [], "promised_by": "2026-05-02T00:00:00Z"},
]


def outcome(run: Any) -> Any:
    try:
        return run()
    except EvaluationError:
        return "error"


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_flat_form_agrees_with_the_expression(text: str) -> None:
    condition = Condition.build(text)
    assert condition.flat is not None
    for first in DATA:
        for then in DATA:
            events = {
                "first": EventRef("1", "billing", "a", T0, "c", first),
                "then": EventRef("2", "support", "b", T0, "c", then),
            }
            views = {name: ref.to_cel() for name, ref in events.items()}
            assert outcome(lambda e=events: condition.value_for(e)) == outcome(
                lambda v=views: condition.value(v)
            ), (first, then)


@pytest.mark.parametrize(
    "text", ["then", "then.data['x'] == 1", "has(then.time)", "then.data.size() > 0"]
)
def test_whole_events_and_indexing_are_not_flattened(text: str) -> None:
    assert Condition.build(text).flat is None


@pytest.mark.parametrize(
    "text",
    [
        "string(then.data.x)",
        "then.data.x == 1",
        "then.data.x == true",
        "1.0 / then.data.x < 0.0",
        "then.data.x in ['1', 1]",
    ],
)
def test_remembered_results_tell_apart_values_python_holds_equal(text: str) -> None:
    condition = Condition.build(text)
    assert condition.flat is not None
    values: list[Any] = [1, True, 1.0, 0, False, 0.0, -0.0, "1", None, 2**70, float("nan")]

    def typed(run: Any) -> Any:
        got = outcome(run)
        return type(got), repr(got)

    for _ in range(2):  # the second round comes from the remembered results
        for value in values:
            event = EventRef("1", "s", "t", T0, "c", {"x": value})
            assert typed(lambda e=event: condition.value_for({"then": e})) == typed(
                lambda e=event: condition.value({"then": e.to_cel()})
            ), value
    assert condition.flat.memo  # some were remembered


def test_long_strings_are_not_remembered() -> None:
    """A value is remembered with its result; 4096 hostile 256 KB strings would hold 1 GB."""
    condition = Condition.build("then.data.note == 'x'")
    assert condition.flat is not None
    for i in range(50):
        long_note = f"{i}" + "y" * 10_000
        event = EventRef(str(i), "s", "t", T0, "c", {"note": long_note})
        assert condition.value_for({"then": event}) is False
    assert not condition.flat.memo
    short = EventRef("s", "s", "t", T0, "c", {"note": "x"})
    assert condition.value_for({"then": short}) is True
    assert condition.flat.memo
