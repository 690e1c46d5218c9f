"""The Python forms of mapping fields agree with CEL wherever they give a value."""

from __future__ import annotations

from typing import Any

import cel
import pytest

from monitor.events.native import FAILED as _FAILED
from monitor.sources.shortcuts import distribute, native

EXPRESSIONS = [
    "value.a",
    "value.a == 'x'",
    "value.a != 'x'",
    "value.a == value.b",
    "value != null && value.a == 'x'",
    "value == null",
    "value.a != null",
    "'p.' + value.a",
    "value.a + ':' + string(value.n) + ':' + value.b",
    "value.a in {'x': 1, 'y': 2}",
    "value.a in ['x', 'z']",
    "({'x': 'ex', 'y': 'why'})[value.a]",
    "has(value.m.k) ? value.m.k : 'none'",
    "value.a == 'x' ? value.b : value.a",
    "(value.a == 'x' ? value.m : value.o).k",
    "{'a': value.a, 'n': double(value.n) / 100.0, 'k': has(value.m.k) ? value.m.k : ''}",
    "value.a == 'x' && value.b != 'y' ? 'both' : 'not'",
    "string(value.n)",
    "true",
    "'lit'",
    "42",
]
VALUES: list[Any] = [
    None,
    {"a": "x", "b": "y", "n": 2500, "m": {"k": "v"}, "o": {"k": "w"}},
    {"a": "y", "b": "x", "n": 7, "m": {}, "o": {"k": "w"}},
    {"a": "z", "b": "z", "n": 1.5, "m": None, "o": {}},
    {"a": 3, "b": "3", "n": "12", "m": {"k": 1}, "o": {"k": None}},
    {"b": "x"},
    {"a": True, "b": True, "n": True},
    [1, 2],
]


def cel_value(expression: str, value: Any) -> Any:
    try:
        return cel.compile(expression).execute({"value": value})
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError):
        return _FAILED


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_native_form_exists_and_agrees_with_cel(expression: str) -> None:
    form = native(distribute(expression))
    assert form is not None, expression
    compared = 0
    for value in VALUES:
        ours = form.run({"value": value})
        if ours is _FAILED:
            continue  # the worker then runs the CEL program
        theirs = cel_value(expression, value)
        assert theirs is not _FAILED, (expression, value, ours)
        assert (ours, type(ours)) == (theirs, type(theirs)), (expression, value)
        compared += 1
    assert compared >= 1, f"{expression} never ran in Python"


@pytest.mark.parametrize(
    "expression",
    [
        "value.a || value.b",
        "value.n * 2",
        "value.a.startsWith('x')",
        "size(value.a)",
        "value.n > 1",
    ],
)
def test_other_shapes_are_left_to_cel(expression: str) -> None:
    assert native(expression) is None
