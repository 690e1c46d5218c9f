"""Checking a rule's message template at load time: syntax, filters and tests, and the names its
kind provides. Every problem is a positioned `TEMPLATE_*` issue; nothing here raises."""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from monitor.config.locate import Locator
from monitor.engine.kinds import Kind
from monitor.errors import ConfigIssue, IssueCode
from monitor.rules.templates import MessageTemplate, unknown_filters, unknown_names

Path = tuple[str | int, ...]

COMMON_TEMPLATE_NAMES = ("key", "rule", "status", "note", "late_by")


def template_names(kind: Kind[Any] | None, resolve_on: bool) -> frozenset[str] | None:
    """What a message of this kind of rule can read (None: unknown kind, check nothing).
    Besides the common names, what the kind `provides` (and `resolve_on` when the rule has one)."""
    if kind is None:
        return None
    extra = ("resolve_on",) if resolve_on else ()
    return frozenset((*COMMON_TEMPLATE_NAMES, *kind.provides, *extra))


TEMPLATE_HINT = (
    "templates are Jinja2: {{ key }}, {{ then.data.amount }}, {{ first.time | ago(then.time) }}"
)


def compile_template(
    text: str | None,
    loc: Locator,
    path: Path,
    rule_id: str,
    issues: list[ConfigIssue],
    provided: frozenset[str] | None,
) -> MessageTemplate | None:
    """Parse and check a rule's message; every problem becomes a positioned issue (None then)."""
    if text is None:
        return None
    error = MessageTemplate.parse_error(text)
    if error is not None:
        line, message = error
        issues.append(
            ConfigIssue(
                IssueCode.TEMPLATE_SYNTAX,
                f"message template: {message}",
                loc.inside_scalar(path, line, 1),
                rule_id,
                TEMPLATE_HINT,
            )
        )
        return None
    before = len(issues)
    for problem in unknown_filters(text):
        known = "filters" if problem.what == "filter" else "tests"
        issues.append(
            ConfigIssue(
                IssueCode.TEMPLATE_FILTER,
                f"message template: no {problem.what} named '{problem.name}'",
                loc.inside_scalar(path, problem.line, problem.col),
                rule_id,
                f"did you mean '{problem.suggestion}'?"
                if problem.suggestion
                else f"see the {known} in docs/rules.md#messages",
            )
        )
    names = provided or frozenset()
    readable = ", ".join(sorted(n.replace("*", "0, match1, ...") for n in names))
    for problem in unknown_names(text, names) if provided is not None else []:
        issues.append(
            ConfigIssue(
                IssueCode.TEMPLATE_NAME,
                f"message template: '{problem.name}' is never set for this kind of rule "
                "(it would render as empty text)",
                loc.inside_scalar(path, problem.line, problem.col),
                rule_id,
                f"did you mean '{problem.suggestion}'?"
                if problem.suggestion
                else f"a message here can read: {readable}",
            )
        )
    if len(issues) > before:
        return None
    try:
        return MessageTemplate.build(text)
    except TemplateError as exc:  # anything Jinja refuses at compile time that we did not foresee
        issues.append(
            ConfigIssue(
                IssueCode.TEMPLATE_SYNTAX,
                f"message template: {exc}",
                loc.inside_scalar(path, getattr(exc, "lineno", 1) or 1, 1),
                rule_id,
                TEMPLATE_HINT,
            )
        )
        return None
