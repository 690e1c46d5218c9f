"""Limits on what rule files may ask of a worker: file size, rule count, CEL cost and functions,
and the template constructs and run-time bounds of messages. Every refusal is a positioned issue."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.events.codec import DEFAULT_MAX_DATA_ITEMS, DEFAULT_MAX_EVENT_BYTES
from monitor.rules.celcost import estimate, unknown_functions
from monitor.rules.compiled import CompiledRule
from monitor.rules.expressions import Condition
from monitor.rules.loader import ParsedFile, ParsedRule
from monitor.rules.sandbox import TemplateLimits
from monitor.rules.templates import unsafe_constructs


@dataclass(frozen=True)
class RuleLimits:
    """The limits a rule set is loaded under (settings `max_rules`, `max_rule_file_bytes`, ...)."""

    max_rules: int = 1000
    max_file_bytes: int = 1024 * 1024
    max_cel_cost: int = 100_000
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_data_items: int = DEFAULT_MAX_DATA_ITEMS
    template: TemplateLimits = field(default_factory=TemplateLimits)

    @property
    def unknown_list_size(self) -> int:
        """The size assumed for a list read from an event (events with longer ones are
        rejected)."""
        return self.max_data_items

    @property
    def unknown_total(self) -> int:
        """The most values one event can hold: every value takes at least two bytes (`1,`)."""
        return max(1, self.max_event_bytes // 2)


def oversized_files(files: Sequence[Path], limits: RuleLimits) -> list[ConfigIssue]:
    """An issue for each file larger than `max_file_bytes` (such files are not read)."""
    issues = []
    for path in files:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            issues.append(
                ConfigIssue(
                    IssueCode.RULE_FILE_TOO_LARGE,
                    f"the file is {size} bytes, limit {limits.max_file_bytes}",
                    SourceLocation(str(path), 1, 1),
                    hint="split it into several files, or raise the setting max_rule_file_bytes",
                )
            )
    return issues


def too_many_rules(files: Sequence[ParsedFile], limits: RuleLimits) -> list[ConfigIssue]:
    """One issue at the first rule beyond `max_rules` (counted over all files, in load order)."""
    seen = 0
    for parsed in files:
        for rule in parsed.rules:
            seen += 1
            if seen > limits.max_rules:
                total = sum(len(f.rules) for f in files)
                return [
                    ConfigIssue(
                        IssueCode.TOO_MANY_RULES,
                        f"{total} rules are loaded, limit {limits.max_rules}; this is the first "
                        "one over it",
                        rule.locator.value(rule.path),
                        rule.spec.id,
                        "remove unused rules, or raise the setting max_rules",
                    )
                ]
    return []


def apply_limits(
    rules: list[CompiledRule], files: Sequence[ParsedFile], limits: RuleLimits
) -> tuple[list[CompiledRule], list[ConfigIssue]]:
    """Check each compiled rule's expressions and message; bind the run-time template limits."""
    parsed: dict[str, ParsedRule] = {}
    for parsed_file in files:
        for one in parsed_file.rules:
            parsed.setdefault(one.spec.id, one)
    kept: list[CompiledRule] = []
    issues: list[ConfigIssue] = []
    for rule in rules:
        source = parsed[rule.id]
        found = _expression_issues(rule, source, limits) + _message_issues(rule, source)
        issues.extend(found)
        if found:
            continue
        if rule.message is not None:
            where = source.locator.value((*source.path, "message"))
            origin = f"rule '{rule.id}' ({where})"
            message = dataclasses.replace(
                rule.message, origin=origin, limits=limits.template, rule_id=rule.id
            )
            rule = dataclasses.replace(rule, message=message)
        kept.append(rule)
    return kept, issues


def _expressions(rule: CompiledRule) -> list[tuple[tuple[str, ...], str, Condition]]:
    """(path inside the rule, original text, compiled condition) for every CEL expression."""
    found: list[tuple[tuple[str, ...], str, Condition]] = []
    for matcher in rule.matchers:
        if matcher.where is not None:
            found.append(((matcher.slot, "where"), matcher.where.text, matcher.where))
    if rule.key.program is not None:
        found.append((("key",), rule.key.text, rule.key.program))
    for name, condition in rule.conditions():
        found.append(((name,), condition.text, condition))
    return found


def _expression_issues(
    rule: CompiledRule, source: ParsedRule, limits: RuleLimits
) -> list[ConfigIssue]:
    issues = []
    for sub, _, condition in _expressions(rule):
        path = (*source.path, *sub)
        node = source.locator.node_at(path)
        written = str(node) if isinstance(node, str) else condition.text
        for name in unknown_functions(condition.text):
            hit = re.search(rf"\b{re.escape(name)}\s*\(", written)
            issues.append(
                ConfigIssue(
                    IssueCode.CEL_FUNCTION,
                    f"CEL has no function '{name}' here",
                    _inside(source, path, written, hit.start() if hit else 0),
                    rule.id,
                    "conditions may call CEL's standard functions (size, matches, contains, "
                    "startsWith, endsWith, int, string, timestamp, duration, ...); nothing "
                    "outside CEL (files, network, Python) is reachable",
                )
            )
        cost = estimate(condition.text, limits.unknown_list_size, limits.unknown_total)
        if cost.iterations > limits.max_cel_cost:
            issues.append(
                ConfigIssue(
                    IssueCode.CEL_COST,
                    f"CEL: one evaluation could visit or copy {cost.iterations:,} values "
                    f"({cost.depth} nested comprehension(s); a list from an event counts as "
                    f"{limits.unknown_list_size:,} items, a whole event as "
                    f"{limits.unknown_total:,} values), limit {limits.max_cel_cost:,}",
                    source.locator.value(path),
                    rule.id,
                    "avoid comprehensions (or `in`) over event lists inside other "
                    "comprehensions, map/filter over event lists (exists, all and exists_one "
                    "visit each item once), and reading an event inside a comprehension (CEL "
                    "copies it at each step: write `x.f in [1, 2]`, not `[1, 2].exists(a, a == "
                    "x.f)`); use has(x.f) rather than `'f' in x`; or raise the setting "
                    "max_cel_cost",
                )
            )
    return issues


def _message_issues(rule: CompiledRule, source: ParsedRule) -> list[ConfigIssue]:
    if rule.message is None:
        return []
    path = (*source.path, "message")
    return [
        ConfigIssue(
            IssueCode.TEMPLATE_UNSAFE,
            f"message template: {problem}",
            source.locator.inside_scalar(path, line, 1),
            rule.id,
            "messages use {{ values }}, filters (ago, when, duration, join, ...), {% if %} and "
            "one level of {% for %}",
        )
        for line, problem in unsafe_constructs(rule.message.text)
    ]


def _inside(
    source: ParsedRule, path: tuple[str | int, ...], text: str, offset: int
) -> SourceLocation:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return source.locator.inside_scalar(path, line, col)
