"""Specs -> `CompiledRule`s: kind checks, CEL scope and syntax, templates, calendars; all issues, positioned."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from monitor.errors import IssueCode, RuleIssue, SourceLocation
from monitor.rules.calendar import BusinessCalendar, Window, build_calendar
from monitor.rules.compiled import CompiledMatcher, CompiledRule, KeyExpression
from monitor.rules.expressions import Condition, cel_literal, free_names, parse_error, rewrite
from monitor.rules.loader import ParsedFile, ParsedRule
from monitor.rules.locate import Locator
from monitor.rules.schema import BusinessTimeSpec, MatcherSpec
from monitor.rules.templates import MessageTemplate

Path = tuple[str | int, ...]

# Per kind: required slots/fields, optional ones, and what each slot's `where` may read.
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "contradiction": (("first", "then", "within"), ()),
    "stalled": (("first", "then", "within"), ("cancel",)),
    "requires": (("first", "then", "within"), ()),
    "during": (("open", "close", "then"), ("within",)),
    "burst": (("match", "threshold", "within"), ("distinct",)),
}
KIND_SCOPES: dict[str, dict[str, tuple[str, ...]]] = {
    "contradiction": {"first": ("first",), "then": ("first", "then")},
    "stalled": {"first": ("first",), "then": ("first", "then"), "cancel": ("first", "cancel")},
    "requires": {"first": ("first",), "then": ("first", "then")},
    "during": {"open": ("open",), "close": ("open", "close"), "then": ("open", "then")},
    "burst": {"match": ("match",)},
}
OPTIONAL_EVERYWHERE = ("resolve_on",)
SLOT_FIELDS = ("first", "then", "open", "close", "cancel", "match", "resolve_on")
SHAPE_FIELDS = (*SLOT_FIELDS, "within", "threshold", "distinct")
MAX_MACRO_DEPTH = 8


@dataclass
class _Names:
    """Lists, macros and calendars shared by every file, as CEL replacements."""

    replacements: dict[str, str] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    defined_at: dict[str, SourceLocation] = field(default_factory=dict)


def compile_rules(files: list[ParsedFile]) -> tuple[list[CompiledRule], list[RuleIssue]]:
    """Compile every rule of every file; rules with issues are left out."""
    issues: list[RuleIssue] = []
    names = _collect_names(files, issues)
    compiled: list[CompiledRule] = []
    seen: dict[str, SourceLocation] = {}
    for parsed_file in files:
        for rule in parsed_file.rules:
            where = rule.locator.value((*rule.path, "id"))
            if rule.spec.id in seen:
                issues.append(
                    RuleIssue(
                        IssueCode.DUPLICATE_RULE,
                        f"rule id '{rule.spec.id}' is already defined at {seen[rule.spec.id]}",
                        where,
                        rule.spec.id,
                        "rule ids are unique across all loaded files; rename one",
                    )
                )
                continue
            seen[rule.spec.id] = where
            result, rule_issues = _compile_rule(rule, names)
            issues.extend(rule_issues)
            if result is not None and not rule_issues and rule.spec.enabled:
                compiled.append(result)  # a disabled rule is still checked, but not run
        for raw, path in parsed_file.rejected:
            issues.extend(_raw_expression_issues(raw, path, parsed_file.locator, names))
    return compiled, issues


def _raw_expression_issues(
    raw: dict[str, Any], path: Path, loc: Locator, names: _Names
) -> list[RuleIssue]:
    """CEL and template problems of a rule that failed the schema (so none go unreported)."""
    issues: list[RuleIssue] = []
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    scopes = KIND_SCOPES.get(str(raw.get("kind")), {})
    all_slots = tuple(scopes) or SLOT_FIELDS
    for slot in SLOT_FIELDS:
        matcher = raw.get(slot)
        if not isinstance(matcher, dict) or not isinstance(matcher.get("where"), str):
            continue
        scope = scopes.get(
            slot, (*all_slots, slot) if slot == "resolve_on" or not scopes else (slot,)
        )
        where_path = (*path, slot, "where")
        _compile_cel(
            matcher["where"], scope, all_slots, names, loc, where_path, rule_id or "?", issues, slot
        )
    if isinstance(raw.get("message"), str):
        _compile_template(raw["message"], loc, (*path, "message"), rule_id or "?", issues)
    return issues


def _collect_names(files: list[ParsedFile], issues: list[RuleIssue]) -> _Names:
    names = _Names()
    for parsed in files:
        for name, values in parsed.header.lists.items():
            if _claim(names, name, parsed.locator, ("lists", name), issues):
                names.replacements[name] = cel_literal(values)
        for name, body in parsed.header.macros.items():
            path: Path = ("macros", name)
            error = parse_error(body)
            if error is not None:
                issues.append(
                    _syntax_issue(
                        parsed.locator, path, body, error.line, error.col, error.message, None
                    )
                )
                continue
            if _claim(names, name, parsed.locator, path, issues):
                names.replacements[name] = f"({body})"
        for name, spec in parsed.header.calendars.items():
            path = ("calendars", name)
            try:
                calendar = build_calendar(
                    name, spec.timezone, list(spec.days), spec.hours, spec.holidays
                )
            except (ValueError, KeyError) as exc:
                issues.append(
                    RuleIssue(
                        IssueCode.WRONG_TYPE,
                        f"calendar '{name}': {exc}",
                        parsed.locator.value(path),
                        hint="timezone like 'Europe/Berlin', hours like '09:00-17:30', holidays as YYYY-MM-DD",
                    )
                )
                continue
            if _claim(names, name, parsed.locator, path, issues):
                names.calendars[name] = calendar
    for name, text in list(names.replacements.items()):
        for _ in range(MAX_MACRO_DEPTH):
            expanded = rewrite(text, names.replacements)
            if expanded == text:
                break
            text = expanded
        names.replacements[name] = text
    return names


def _claim(names: _Names, name: str, locator: Locator, path: Path, issues: list[RuleIssue]) -> bool:
    where = locator.key(path)
    if name in names.defined_at:
        issues.append(
            RuleIssue(
                IssueCode.DUPLICATE_NAME,
                f"'{name}' is already defined at {names.defined_at[name]}",
                where,
                hint="lists, macros and calendars share one namespace across files; rename one",
            )
        )
        return False
    names.defined_at[name] = where
    return True


def _compile_rule(rule: ParsedRule, names: _Names) -> tuple[CompiledRule | None, list[RuleIssue]]:
    spec, loc, base = rule.spec, rule.locator, rule.path
    issues = _kind_issues(rule)
    scopes = KIND_SCOPES[spec.kind]
    matchers: dict[str, CompiledMatcher] = {}
    all_slots = tuple(scopes)
    for slot in (*scopes, *OPTIONAL_EVERYWHERE):
        matcher_spec: MatcherSpec | None = getattr(spec, slot)
        if matcher_spec is None:
            continue
        scope = scopes.get(slot, (*all_slots, slot))
        matcher, found = _compile_matcher(
            slot, matcher_spec, scope, all_slots, names, loc, (*base, slot), spec.id
        )
        issues.extend(found)
        if matcher is not None:
            matchers[slot] = matcher
    key = _compile_key(spec.key, names, loc, (*base, "key"), spec.id, issues)
    distinct = None
    if spec.distinct is not None:
        distinct = _compile_cel(
            spec.distinct, ("event",), (), names, loc, (*base, "distinct"), spec.id, issues
        )
    message = _compile_template(spec.message, loc, (*base, "message"), spec.id, issues)
    within = _compile_window(spec.within, names, loc, (*base, "within"), spec.id, issues)
    if issues or key is None:
        return None, issues
    return (
        CompiledRule(
            id=spec.id,
            title=spec.title,
            kind=spec.kind,
            severity=spec.severity,
            owners=tuple(spec.owners),
            key=key,
            file=loc.file,
            line=loc.value(base).line,
            col=loc.value(base).col,
            description=spec.description,
            message=message,
            labels=dict(spec.labels),
            runbook=spec.runbook,
            realert=spec.realert,
            status=spec.status,
            tags=tuple(spec.tags),
            within=within,
            threshold=spec.threshold,
            distinct=distinct,
            **matchers,
        ),
        [],
    )


def _kind_issues(rule: ParsedRule) -> list[RuleIssue]:
    spec, loc, base = rule.spec, rule.locator, rule.path
    required, optional = KIND_FIELDS[spec.kind]
    issues = []
    for name in required:
        if getattr(spec, name) is None:
            issues.append(
                RuleIssue(
                    IssueCode.RULE_KIND_FIELDS,
                    f"a '{spec.kind}' rule needs '{name}'",
                    loc.value((*base, "kind")),
                    spec.id,
                    f"'{spec.kind}' rules use: {', '.join(required)}"
                    + (f" (optional: {', '.join(optional)})" if optional else ""),
                )
            )
    for name in SHAPE_FIELDS:
        if getattr(spec, name) is not None and name not in (
            *required,
            *optional,
            *OPTIONAL_EVERYWHERE,
        ):
            issues.append(
                RuleIssue(
                    IssueCode.RULE_KIND_FIELDS,
                    f"'{name}' has no meaning for a '{spec.kind}' rule",
                    loc.key((*base, name)),
                    spec.id,
                    f"'{spec.kind}' rules use: {', '.join(required + optional)}",
                )
            )
    return issues


def _compile_matcher(
    slot: str,
    spec: MatcherSpec,
    scope: tuple[str, ...],
    all_slots: tuple[str, ...],
    names: _Names,
    loc: Locator,
    path: Path,
    rule_id: str,
) -> tuple[CompiledMatcher | None, list[RuleIssue]]:
    issues: list[RuleIssue] = []
    where = None
    if spec.where is not None:
        where = _compile_cel(
            spec.where, scope, all_slots, names, loc, (*path, "where"), rule_id, issues, slot
        )
    sources = (
        spec.source if isinstance(spec.source, list) else [spec.source] if spec.source else None
    )
    types = spec.type if isinstance(spec.type, list) else [spec.type]
    matcher = CompiledMatcher(
        slot, frozenset(sources) if sources else None, frozenset(types), where
    )
    return (None if issues else matcher), issues


def _compile_key(
    text: str, names: _Names, loc: Locator, path: Path, rule_id: str, issues: list[RuleIssue]
) -> KeyExpression | None:
    if text.strip() in ("subject", "event.subject"):
        return KeyExpression(text)
    fields = ("event", "id", "source", "department", "type", "time", "subject", "data")
    program = _compile_cel(text, fields, (), names, loc, path, rule_id, issues)
    return None if program is None else KeyExpression(text, program)


def _compile_cel(
    text: str,
    scope: tuple[str, ...],
    all_slots: tuple[str, ...],
    names: _Names,
    loc: Locator,
    path: Path,
    rule_id: str,
    issues: list[RuleIssue],
    slot: str | None = None,
) -> Condition | None:
    error = parse_error(text)
    if error is not None:
        issues.append(_syntax_issue(loc, path, text, error.line, error.col, error.message, rule_id))
        return None
    known = {*scope, "event", *names.replacements}
    before = len(issues)
    for name, offset in free_names(text):
        if name in known:
            continue
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        where = loc.inside_scalar(path, line, col)
        if name in all_slots:
            issues.append(
                RuleIssue(
                    IssueCode.CEL_SCOPE,
                    f"'{name}' is not known yet in '{slot}.where'",
                    where,
                    rule_id,
                    f"'{slot}.where' can read {', '.join(repr(s) for s in scope)}; "
                    f"conditions that compare with '{name}' belong in '{name}.where'",
                )
            )
        else:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            issues.append(
                RuleIssue(
                    IssueCode.UNKNOWN_NAME,
                    f"unknown name '{name}'",
                    where,
                    rule_id,
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"in scope here: {', '.join(sorted(known))}; define lists and macros at the top of a file",
                )
            )
    if len(issues) > before:
        return None
    replacements = dict(names.replacements)
    if slot is not None:
        replacements["event"] = slot
    return Condition.build(rewrite(text, replacements))


def _syntax_issue(
    loc: Locator, path: Path, text: str, line: int, col: int, message: str, rule_id: str | None
) -> RuleIssue:
    return RuleIssue(
        IssueCode.CEL_SYNTAX,
        f"CEL: {message}",
        loc.inside_scalar(path, line, col),
        rule_id,
        "CEL uses && || ! ==, quotes for strings, `x in list` and `has(x.field)`",
    )


def _compile_template(
    text: str | None, loc: Locator, path: Path, rule_id: str, issues: list[RuleIssue]
) -> MessageTemplate | None:
    if text is None:
        return None
    error = MessageTemplate.parse_error(text)
    if error is not None:
        line, message = error
        issues.append(
            RuleIssue(
                IssueCode.TEMPLATE_SYNTAX,
                f"message template: {message}",
                loc.inside_scalar(path, line, 1),
                rule_id,
                "templates are Jinja2: {{ key }}, {{ then.data.amount }}, {{ first.time | ago(then.time) }}",
            )
        )
        return None
    return MessageTemplate.build(text)


def _compile_window(
    spec: timedelta | BusinessTimeSpec | None,
    names: _Names,
    loc: Locator,
    path: Path,
    rule_id: str,
    issues: list[RuleIssue],
) -> Window | None:
    if spec is None:
        return None
    if isinstance(spec, timedelta):
        return Window(spec)
    calendar = names.calendars.get(spec.calendar)
    if calendar is None:
        close = difflib.get_close_matches(spec.calendar, sorted(names.calendars), n=1)
        issues.append(
            RuleIssue(
                IssueCode.UNKNOWN_NAME,
                f"unknown calendar '{spec.calendar}'",
                loc.value((*path, "calendar")),
                rule_id,
                f"did you mean '{close[0]}'?"
                if close
                else "declare it under `calendars:` in a rule file",
            )
        )
        return None
    return Window(spec.business, calendar)
