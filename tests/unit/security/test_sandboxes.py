"""Escape attempts from rule authors: CEL and Jinja2 cannot reach Python, files or the network,
and expensive expressions are refused at load time or stopped at run time, naming the rule."""

from __future__ import annotations

import logging
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import cel
import pytest

from monitor.errors import IssueCode
from monitor.rules import RuleLimits, load_rules
from monitor.rules.celcost import estimate
from monitor.rules.expressions import Condition, EvaluationError
from monitor.rules.sandbox import TemplateLimits
from monitor.rules.templates import MessageTemplate, unsafe_constructs

RULE = """\
version: 1
rules:
  - id: hostile
    title: A rule written to escape
    kind: contradiction
    first: {{source: support, type: fee.waiver_promised}}
    then: {{source: billing, type: invoice.charged, where: {where}}}
    within: 30d
    message: {message}
"""
EVENT = {"id": "e1", "source": "billing", "data": {"amount": 25, "lines": [1, 2, 3]}}


def load(tmp_path: Path, where: str = "true", message: str = "ok") -> list[tuple[str, int]]:
    path = tmp_path / "hostile.yaml"
    path.write_text(RULE.format(where=_quote(where), message=_quote(message)))
    result = load_rules([path])
    return [(f"{i.code}:{i.rule_id}", i.location.line) for i in result.errors]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- CEL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "open('/etc/passwd') == ''",
        "__import__('os') == null",
        "exec('print(1)') == null",
        "getattr(then, '__class__') == null",
        "then.data.lowerAscii() == ''",
    ],
)
def test_cel_calling_anything_outside_cel_is_refused_at_load(tmp_path: Path, where: str) -> None:
    assert load(tmp_path, where) == [(f"{IssueCode.CEL_FUNCTION}:hostile", 7)]


@pytest.mark.parametrize(
    "expression",
    ["then.__class__", "then.data.__dict__", "then.__init__.__globals__", "then.data.keys"],
)
def test_cel_attribute_access_sees_only_event_keys(expression: str) -> None:
    condition = Condition.build(expression)
    with pytest.raises(EvaluationError):
        condition.value({"then": EVENT})


def test_cel_values_are_converted_not_shared() -> None:
    """CEL receives copies of plain data: nothing it returns is a live Python object."""
    value = Condition.build("then").value({"then": EVENT})
    assert value == EVENT and value is not EVENT


def test_cel_nested_comprehension_over_event_lists_is_refused_at_load(tmp_path: Path) -> None:
    where = "then.data.lines.all(a, then.data.lines.all(b, a <= b || a > b))"
    assert load(tmp_path, where) == [(f"{IssueCode.CEL_COST}:hostile", 7)]


def test_cel_nested_comprehension_over_large_literals_is_refused_at_load(tmp_path: Path) -> None:
    big = "[" + ",".join(str(n) for n in range(2000)) + "]"
    where = f"{big}.exists(a, {big}.exists(b, a == b && a == then.data.amount))"
    assert load(tmp_path, where) == [(f"{IssueCode.CEL_COST}:hostile", 7)]


def test_cel_membership_in_an_event_list_inside_a_comprehension_counts(tmp_path: Path) -> None:
    where = "then.data.lines.exists(a, a in then.data.other)"
    assert load(tmp_path, where) == [(f"{IssueCode.CEL_COST}:hostile", 7)]


def test_cel_single_comprehension_and_literal_membership_are_allowed(tmp_path: Path) -> None:
    where = "then.data.lines.exists(l, l in [1, 2, 3]) && then.data.amount in [25, 30]"
    assert load(tmp_path, where) == []


def test_cel_cost_limit_is_a_setting(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(where=_quote("[1,2,3].all(a, [1,2,3].all(b, true))"), message="x"))
    assert load_rules([path], RuleLimits(max_cel_cost=9)).errors == []
    [issue] = load_rules([path], RuleLimits(max_cel_cost=8)).errors
    assert issue.code == IssueCode.CEL_COST and "max_cel_cost" in (issue.hint or "")


def test_cel_cost_estimate_is_an_upper_bound_on_iterations() -> None:
    assert estimate("[1,2,3].all(a, [1,2].exists(b, a == b))", 100).iterations == 6
    assert estimate("x.data.a.all(y, true)", 100).iterations == 100
    assert estimate("x.data.a.all(y, y.b.all(z, z in x.data.c))", 100).iterations == 100**3


def test_cel_regex_engine_is_linear_time_on_catastrophic_patterns() -> None:
    """CEL's `matches` uses Rust's regex crate (finite automata, no backtracking): the classic
    exponential pattern on a 5,000-character subject answers at once instead of never."""
    subject = "a" * 5000 + "!"
    started = time.perf_counter()
    for pattern in ["^(a+)+$", "^(a|a)*$", "^(a|aa)+$", "^(([a-z])+.)+[A-Z]([a-z])+$"]:
        assert cel.compile(f"s.matches('{pattern}')").execute({"s": subject}) is False
    # 4 matches that a backtracking engine would need ~2^5000 steps for; generous bound
    assert time.perf_counter() - started < 5


def test_cel_regex_backreferences_and_huge_patterns_fail_as_evaluation_errors() -> None:
    for pattern in ["(a)\\\\1", "a{1000}{1000}"]:
        with pytest.raises(EvaluationError):
            Condition.build(f"s.matches('{pattern}')").value({"s": "aa"})


# --- Jinja2 ------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ key.__class__ }}",
    "{{ then.mro() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ then|attr('__class__') }}",
    "{{ then['__class__'] }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% extends '/etc/passwd' %}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for a in then.data.lines %}{% for b in then.data.lines %}x{% endfor %}{% endfor %}",
    "{{ '{0.__class__}'.format(key) }}",
    "{{ 'x'.center(1000000000) }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_template_escape_is_refused_at_load_naming_the_rule(tmp_path: Path, template: str) -> None:
    assert unsafe_constructs(template), template
    assert set(load(tmp_path, message=template)) == {(f"{IssueCode.TEMPLATE_UNSAFE}:hostile", 9)}


@pytest.mark.parametrize("template", ESCAPES)
def test_template_escape_renders_nothing_of_python_at_run_time(template: str) -> None:
    """Even without the load-time check, the sandbox itself gives nothing away."""
    rendered = MessageTemplate.build(template).render(_context(), "FALLBACK")
    assert not any(leak in rendered for leak in ("class", "root:", "uid=", "module", "function"))


BOUNDED = [
    ("{% for i in range(10**9) %}{% endfor %}", "range()"),
    ("{{ 'x' * 10**9 }}", "'*'"),
    ("{{ [1] * 10**9 }}", "'*'"),
    ("{{ 9 ** 999999999 }}", "'**'"),
    ("{{ '%999999999d' % 1 }}", "width"),
    ("{{ 'x'|center(10**9) }}", "center"),
    ("{{ 'xy'|replace('', 'z' * 5000) }}", "replace"),
    ("{{ then.data.lines|batch(10**9, 'x')|list }}", "batch"),
    ("{{ 'ab'|indent(10**8) }}", "indent"),
    ("{% for i in range(100) %}{% if then.data.big|sort|sum %}{% endif %}{% endfor %}", "budget"),
]


@pytest.mark.parametrize(("template", "why"), BOUNDED)
def test_expensive_template_is_stopped_at_run_time_naming_the_rule(
    template: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = MessageTemplate.build(template)
    message = MessageTemplate(message.text, message.compiled, "rule 'hostile' (r.yaml:9:14)")
    with caplog.at_level(logging.WARNING, logger="cxmon"):
        assert message.render(_context(), "FALLBACK") == "FALLBACK"
    [record] = caplog.records
    assert record.getMessage().startswith("rule 'hostile' (r.yaml:9:14): message not rendered")
    assert why in record.getMessage()


def test_long_output_is_cut_at_the_setting() -> None:
    template = MessageTemplate.build("{% for i in range(500) %}{{ key }} {% endfor %}")
    template = MessageTemplate(
        template.text, template.compiled, limits=TemplateLimits(max_chars=100)
    )
    rendered = template.render(_context(), "FALLBACK")
    assert len(rendered) == 100 and rendered.endswith("…")


def test_loaded_rules_carry_their_origin_into_run_time_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(where='"true"', message=_quote("{{ 'x' * 10**9 }}")))
    [rule] = load_rules([path]).rules
    assert rule.message is not None
    assert rule.message.origin == f"rule 'hostile' ({path}:9:14)"


def test_ordinary_messages_still_render() -> None:
    text = "{{ key }} charged {{ then.data.amount }} {{ first.time | ago(then.time) }} later"
    rendered = MessageTemplate.build(text).render(_context(), "FALLBACK")
    assert rendered == "c1 charged 25 3 days later"


def _context() -> dict[str, object]:
    first = {"time": datetime(2026, 5, 1, tzinfo=UTC), "data": {}}
    data = {"amount": 25, "lines": [1, 2], "big": list(range(5000))}
    then = {"time": datetime(2026, 5, 4, tzinfo=UTC), "data": data}
    return {"key": "c1", "first": first, "then": then}


def test_rule_file_text_is_never_exposed_to_templates(tmp_path: Path) -> None:
    text = textwrap.dedent("{{ rule }}{{ rules }}{{ config }}{{ settings }}{{ environ }}")
    assert MessageTemplate.build(text).render(_context(), "F") == ""
