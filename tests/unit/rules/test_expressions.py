"""Name handling in CEL conditions: which identifiers are variables, and rewriting them."""

from __future__ import annotations

import pytest

from monitor.rules.expressions import free_names, rewrite


def names(expression: str) -> list[str]:
    return [name for name, _ in free_names(expression)]


def test_free_names_report_their_offsets() -> None:
    assert free_names("first.data.fee_code in waivable_fees") == [
        ("first", 0),
        ("waivable_fees", 23),
    ]


def test_string_literals_hold_no_names() -> None:
    assert names("\"waivable_fees\" == x && 'vip' != y") == ["x", "y"]


def test_escaped_quote_does_not_end_string_literal() -> None:
    assert names(r'"say \"vip\"" == x') == ["x"]


def test_member_names_are_not_free() -> None:
    assert names("then.data.waivable_fees") == ["then"]


def test_member_after_whitespace_is_not_free() -> None:
    assert names("first\n  .data") == ["first"]


def test_function_names_are_not_free() -> None:
    assert names("size(x) > 0 && x.startsWith(y)") == ["x", "x", "y"]


def test_keywords_are_not_free() -> None:
    assert names("true && null != false && a in b") == ["a", "b"]


@pytest.mark.parametrize("macro", ["all", "exists", "exists_one", "map", "filter"])
def test_comprehension_variable_is_not_free(macro: str) -> None:
    assert names(f"then.data.tags.{macro}(t, t in vip)") == ["then", "vip"]


@pytest.mark.xfail(
    reason="free_names treats a comprehension variable as bound in the whole expression",
    strict=True,
)
def test_comprehension_variable_is_free_outside_its_macro() -> None:
    assert names("x.exists(e, e > 0) && e") == ["x", "e"]


def test_rewrite_replaces_free_names() -> None:
    rewritten = rewrite("first.data.fee_code in fees", {"fees": '["late_fee"]'})
    assert rewritten == 'first.data.fee_code in ["late_fee"]'


def test_rewrite_leaves_string_literals_untouched() -> None:
    assert rewrite('"fees" == fees', {"fees": "[1]"}) == '"fees" == [1]'


def test_rewrite_leaves_member_names_untouched() -> None:
    assert rewrite("first.data.fees == fees", {"fees": "[1]"}) == "first.data.fees == [1]"


def test_rewrite_leaves_comprehension_variables_untouched() -> None:
    assert rewrite("x.all(fees, fees > 0)", {"fees": "[1]"}) == "x.all(fees, fees > 0)"


def test_rewrite_binds_event_to_slot() -> None:
    assert rewrite("event.data.x == 1", {"event": "then"}) == "then.data.x == 1"
