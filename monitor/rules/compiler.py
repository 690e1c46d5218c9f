"""Specs -> `CompiledRule`s: kind checks, CEL scope and syntax, templates, calendars; all issues, positioned."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from monitor.config.locate import Locator
from monitor.engine.kinds import KINDS, RESOLVE_ON, Kind
from monitor.engine.kinds.base import slot_matchers
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.rules.calendar import BusinessCalendar, Window
from monitor.rules.compiled import CompiledMatcher, CompiledRule, KeyExpression
from monitor.rules.expressions import Condition, free_names, parse_error, rewrite
from monitor.rules.loader import ParsedFile, ParsedRule
from monitor.rules.messages import compile_template, template_names
from monitor.rules.names import Names, collect_names, syntax_issue
from monitor.rules.schema import BusinessTimeSpec, MatcherSpec

Path = tuple[str | int, ...]


def compile_rules(files: list[ParsedFile]) -> tuple[list[CompiledRule], list[ConfigIssue]]:
    """Compile every rule of every file; rules with issues are left out."""
    issues: list[ConfigIssue] = []
    names = collect_names(files, issues)
    duplicates = _duplicate_ids(files, issues)
    compiled: list[CompiledRule] = []
    for parsed_file in files:
        for rule in parsed_file.rules:
            if (parsed_file.file, rule.path) in duplicates:
                continue
            result, rule_issues = _compile_rule(rule, names)
            issues.extend(rule_issues)
            if result is not None and not rule_issues and rule.spec.enabled:
                compiled.append(result)  # a disabled rule is still checked, but not run
        for raw, path in parsed_file.rejected:
            issues.extend(_raw_expression_issues(raw, path, parsed_file.locator, names))
    return compiled, issues


def _duplicate_ids(files: list[ParsedFile], issues: list[ConfigIssue]) -> set[tuple[str, Path]]:
    """(file, path) of every rule whose id an earlier rule already has, each with an issue.
    Rules that failed the schema count too: their id is still taken."""
    seen: dict[str, SourceLocation] = {}
    duplicates: set[tuple[str, Path]] = set()
    for parsed_file in files:
        written = [(rule.path, rule.spec.id) for rule in parsed_file.rules] + [
            (path, raw.get("id")) for raw, path in parsed_file.rejected
        ]
        for path, rule_id in sorted(written, key=lambda pair: pair[0]):
            if not isinstance(rule_id, str):
                continue
            where = parsed_file.locator.value((*path, "id"))
            if rule_id not in seen:
                seen[rule_id] = where
                continue
            duplicates.add((parsed_file.file, path))
            issues.append(
                ConfigIssue(
                    IssueCode.DUPLICATE_RULE,
                    f"rule id '{rule_id}' is already defined at {seen[rule_id]}",
                    where,
                    rule_id,
                    "rule ids are unique across all loaded files; rename one",
                )
            )
    return duplicates


def _raw_expression_issues(
    raw: dict[str, Any], path: Path, loc: Locator, names: Names
) -> list[ConfigIssue]:
    """CEL and template problems of a rule that failed the schema (so none go unreported)."""
    issues: list[ConfigIssue] = []
    rule_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    kind = KINDS.get(str(raw.get("kind")))
    all_slots = kind.slots if kind is not None else _every_slot()
    for slot in (*_every_slot(), RESOLVE_ON):
        matcher = raw.get(slot)
        if not isinstance(matcher, dict) or not isinstance(matcher.get("where"), str):
            continue
        if kind is not None:
            scope = kind.scope(slot)
        else:  # an unknown kind: check names, not the order slots may read each other in
            scope = (*all_slots, slot) if slot == RESOLVE_ON else (slot,)
        where_path = (*path, slot, "where")
        site = _Site(names, loc, rule_id or "?", issues)
        _compile_cel(matcher["where"], scope, all_slots, site, where_path, slot)
    if isinstance(raw.get("message"), str):
        provided = template_names(kind, isinstance(raw.get(RESOLVE_ON), dict))
        compile_template(raw["message"], loc, (*path, "message"), rule_id or "?", issues, provided)
    within = raw.get("within")
    if isinstance(within, dict) and isinstance(within.get("calendar"), str):
        _calendar(within["calendar"], names, loc, (*path, "within"), rule_id or "?", issues)
    return issues


def _every_slot() -> tuple[str, ...]:
    """Every matcher slot some kind has, in the order kinds list them."""
    return tuple(dict.fromkeys(slot for kind in KINDS.values() for slot in kind.slots))


def _compile_rule(rule: ParsedRule, names: Names) -> tuple[CompiledRule | None, list[ConfigIssue]]:
    spec, loc, base = rule.spec, rule.locator, rule.path
    kind = KINDS[spec.kind]
    issues = _kind_issues(rule, kind)
    values: dict[str, Any] = {}
    for slot in (*kind.slots, RESOLVE_ON):
        matcher_spec: MatcherSpec | None = getattr(spec, slot)
        if matcher_spec is None:
            continue
        site = _Site(names, loc, spec.id, issues)
        matcher = _compile_matcher(slot, matcher_spec, kind.scope(slot), kind.slots, site, base)
        if matcher is not None:
            values[slot] = matcher
    key = _compile_key(spec.key, names, loc, (*base, "key"), spec.id, issues)
    if spec.distinct is not None:
        site = _Site(names, loc, spec.id, issues)
        values["distinct"] = _compile_cel(spec.distinct, ("event",), (), site, (*base, "distinct"))
    if spec.threshold is not None:
        values["threshold"] = spec.threshold
    provided = template_names(kind, spec.resolve_on is not None)
    message = compile_template(spec.message, loc, (*base, "message"), spec.id, issues, provided)
    within = _compile_window(spec.within, names, loc, (*base, "within"), spec.id, issues)
    values["within"] = within
    if issues or key is None or (spec.within is not None and within is None):
        return None, issues
    form = kind.build(values)
    resolve_on = values.get(RESOLVE_ON)
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
            form=form,
            matchers=(*slot_matchers(form), *([resolve_on] if resolve_on else [])),
            resolve_on=resolve_on,
            within=within,
        ),
        [],
    )


def _kind_issues(rule: ParsedRule, kind: Kind[Any]) -> list[ConfigIssue]:
    spec, loc, base = rule.spec, rule.locator, rule.path
    required, optional = kind.requires, kind.optional
    issues = []
    for name in required:
        if getattr(spec, name) is None:
            issues.append(
                ConfigIssue(
                    IssueCode.RULE_KIND_FIELDS,
                    f"a '{spec.kind}' rule needs '{name}'",
                    loc.value((*base, "kind")),
                    spec.id,
                    f"'{spec.kind}' rules use: {', '.join(required)}"
                    + (f" (optional: {', '.join(optional)})" if optional else ""),
                )
            )
    shaped = dict.fromkeys(name for other in KINDS.values() for name in other.uses)
    for name in shaped:
        if getattr(spec, name, None) is not None and name not in kind.uses:
            issues.append(
                ConfigIssue(
                    IssueCode.RULE_KIND_FIELDS,
                    f"'{name}' has no meaning for a '{spec.kind}' rule",
                    loc.key((*base, name)),
                    spec.id,
                    f"'{spec.kind}' rules use: {', '.join(required + optional)}",
                )
            )
    return issues


@dataclass(frozen=True)
class _Site:
    """Where an expression is compiled: the shared names, the file, the rule, the issue list."""

    names: Names
    loc: Locator
    rule_id: str
    issues: list[ConfigIssue]


def _compile_matcher(
    slot: str,
    spec: MatcherSpec,
    scope: tuple[str, ...],
    all_slots: tuple[str, ...],
    site: _Site,
    rule_path: Path,
) -> CompiledMatcher | None:
    """The rule's matcher in `slot`, or None (its issues added to the site's)."""
    before = len(site.issues)
    where = None
    if spec.where is not None:
        where = _compile_cel(spec.where, scope, all_slots, site, (*rule_path, slot, "where"), slot)
    sources = (
        spec.source if isinstance(spec.source, list) else [spec.source] if spec.source else None
    )
    if spec.type is None and spec.where is None:
        site.issues.append(
            ConfigIssue(
                IssueCode.MISSING_FIELD,
                f"'{slot}' needs a `type` or a `where` (it would match every event)",
                site.loc.key((*rule_path, slot)),
                site.rule_id,
                "add `type: ...`, or select with a condition: "
                '`where: "event.type in contact_types"`',
            )
        )
    types = (
        None
        if spec.type is None
        else frozenset(spec.type if isinstance(spec.type, list) else [spec.type])
    )
    matcher = CompiledMatcher(slot, frozenset(sources) if sources else None, types, where)
    return None if len(site.issues) > before else matcher


def _compile_key(
    text: str, names: Names, loc: Locator, path: Path, rule_id: str, issues: list[ConfigIssue]
) -> KeyExpression | None:
    if text.strip() in ("subject", "event.subject"):
        return KeyExpression(text)
    fields = ("event", "id", "source", "department", "type", "time", "subject", "data")
    program = _compile_cel(text, fields, (), _Site(names, loc, rule_id, issues), path)
    return None if program is None else KeyExpression(text, program)


def _compile_cel(
    text: str,
    scope: tuple[str, ...],
    all_slots: tuple[str, ...],
    site: _Site,
    path: Path,
    slot: str | None = None,
) -> Condition | None:
    names, loc, rule_id, issues = site.names, site.loc, site.rule_id, site.issues
    error = parse_error(text)
    if error is not None:
        issues.append(syntax_issue(loc, path, error.line, error.col, error.message, rule_id))
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
                ConfigIssue(
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
                ConfigIssue(
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


def _compile_window(
    spec: timedelta | BusinessTimeSpec | None,
    names: Names,
    loc: Locator,
    path: Path,
    rule_id: str,
    issues: list[ConfigIssue],
) -> Window | None:
    if spec is None:
        return None
    if isinstance(spec, timedelta):
        return Window(spec)
    calendar = _calendar(spec.calendar, names, loc, path, rule_id, issues)
    return None if calendar is None else Window(spec.business, calendar)


def _calendar(
    name: str, names: Names, loc: Locator, path: Path, rule_id: str, issues: list[ConfigIssue]
) -> BusinessCalendar | None:
    """The named calendar; an issue if nobody declared it. A declared calendar with errors has
    its own issue already, so a rule using it is left out without a second one."""
    calendar = names.calendars.get(name)
    if calendar is not None or name in names.broken_calendars:
        return calendar
    close = difflib.get_close_matches(
        name, sorted({*names.calendars, *names.broken_calendars}), n=1
    )
    issues.append(
        ConfigIssue(
            IssueCode.UNKNOWN_NAME,
            f"unknown calendar '{name}'",
            loc.value((*path, "calendar")),
            rule_id,
            f"did you mean '{close[0]}'?"
            if close
            else "declare it under `calendars:` in a rule file",
        )
    )
    return None
