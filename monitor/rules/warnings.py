"""Warnings, like Falco's: things in a rule set that are probably mistakes but harm nothing when
loaded. Lists, macros and calendars no rule uses (`UNUSED_NAME`), and a condition that is false
whatever the event (`NEVER_FIRES`). A matcher for a type no known source produces is not one of
them: a department may start sending it tomorrow."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from monitor.errors import ConfigIssue, IssueCode
from monitor.rules.compiled import CompiledRule
from monitor.rules.expressions import EvaluationError, free_names
from monitor.rules.loader import ParsedFile, ParsedRule

_SLOTS = ("first", "then", "open", "close", "cancel", "match", "resolve_on")
_SECTIONS = {"lists": "list", "macros": "macro", "calendars": "calendar"}


def rule_set_warnings(
    files: Sequence[ParsedFile], rules: Sequence[CompiledRule]
) -> list[ConfigIssue]:
    """Every warning about a set of rule files loaded together."""
    return _unused_names(files) + _never_fires(files, rules)


def _unused_names(files: Sequence[ParsedFile]) -> list[ConfigIssue]:
    used: set[str] = set()
    for text in _expressions(files):
        used.update(name for name, _ in free_names(text))
    used.update(_calendars_used(files))
    issues = []
    for parsed in files:
        for section, what in _SECTIONS.items():
            for name in getattr(parsed.header, section):
                if name in used:
                    continue
                issues.append(
                    ConfigIssue(
                        IssueCode.UNUSED_NAME,
                        f"{what} '{name}' is not used by any rule",
                        parsed.locator.key((section, name)),
                        hint=f"remove it, or use it in a rule ({_how(what, name)})",
                        severity="warning",
                    )
                )
    return issues


def _how(what: str, name: str) -> str:
    if what == "calendar":
        return f"within: {{business: 8h, calendar: {name}}}"
    if what == "list":
        return f'where: "event.data.code in {name}"'
    return f'where: "{name}"'


def _expressions(files: Sequence[ParsedFile]) -> Iterator[str]:
    """Every CEL text written in the files: macro bodies, and each rule's conditions, key and
    `distinct` (rules that failed the schema too, as written)."""
    for parsed in files:
        yield from parsed.header.macros.values()
        raws: list[Any] = [r.spec.model_dump() for r in parsed.rules]
        raws += [raw for raw, _ in parsed.rejected]
        for raw in raws:
            for slot in _SLOTS:
                matcher = raw.get(slot)
                if isinstance(matcher, dict) and isinstance(matcher.get("where"), str):
                    yield matcher["where"]
            for field in ("key", "distinct"):
                if isinstance(raw.get(field), str):
                    yield raw[field]


def _calendars_used(files: Sequence[ParsedFile]) -> Iterator[str]:
    for parsed in files:
        raws: list[Any] = [r.spec.model_dump() for r in parsed.rules]
        raws += [raw for raw, _ in parsed.rejected]
        for raw in raws:
            within = raw.get("within")
            if isinstance(within, dict) and isinstance(within.get("calendar"), str):
                yield within["calendar"]


def _never_fires(files: Sequence[ParsedFile], rules: Sequence[CompiledRule]) -> list[ConfigIssue]:
    placed: dict[str, ParsedRule] = {}
    for parsed in files:
        for one in parsed.rules:
            placed.setdefault(one.spec.id, one)
    issues = []
    for rule in rules:
        source = placed.get(rule.id)
        for matcher in rule.matchers:
            condition = matcher.where
            if source is None or condition is None or free_names(condition.text):
                continue
            try:
                constant = condition.value({})
            except EvaluationError:
                continue  # an error on every event is counted at run time (eval errors)
            if constant is True:
                continue
            effect = (
                "the rule can never fire"
                if matcher.slot in ("first", "then", "open", "match")
                else f"'{matcher.slot}' never matches"
            )
            issues.append(
                ConfigIssue(
                    IssueCode.NEVER_FIRES,
                    f"'{matcher.slot}.where' is {_cel(constant)} whatever the event: {effect}",
                    source.locator.value((*source.path, matcher.slot, "where")),
                    rule.id,
                    "a condition should read the event (or an earlier slot); "
                    "to switch a rule off, write `enabled: false`",
                    severity="warning",
                )
            )
    return issues


def _cel(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) or value is None else repr(value)
