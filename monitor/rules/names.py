"""Lists, macros and calendars: one namespace shared by every rule file, collected before any
rule is compiled, with a positioned issue for each duplicate or broken definition."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.config.locate import Locator
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.rules.calendar import BusinessCalendar, CalendarError, build_calendar
from monitor.rules.expressions import cel_literal, parse_error, rewrite
from monitor.rules.loader import ParsedFile

Path = tuple[str | int, ...]

MAX_MACRO_DEPTH = 8


@dataclass
class Names:
    """Lists, macros and calendars shared by every file, as CEL replacements."""

    replacements: dict[str, str] = field(default_factory=dict)
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)
    broken_calendars: set[str] = field(default_factory=set)
    defined_at: dict[str, SourceLocation] = field(default_factory=dict)


def collect_names(files: list[ParsedFile], issues: list[ConfigIssue]) -> Names:
    """Every file's lists, macros (expanded into each other) and calendars, each name claimed
    once across files; duplicates and broken definitions become issues."""
    names = Names()
    for parsed in files:
        for name, values in parsed.header.lists.items():
            if _claim(names, name, parsed.locator, ("lists", name), issues):
                names.replacements[name] = cel_literal(values)
        for name, body in parsed.header.macros.items():
            path: Path = ("macros", name)
            error = parse_error(body)
            if error is not None:
                issues.append(
                    syntax_issue(parsed.locator, path, error.line, error.col, error.message, None)
                )
                continue
            if _claim(names, name, parsed.locator, path, issues):
                names.replacements[name] = f"({body})"
        _collect_calendars(parsed, names, issues)
    for name, text in list(names.replacements.items()):
        for _ in range(MAX_MACRO_DEPTH):
            expanded = rewrite(text, names.replacements)
            if expanded == text:
                break
            text = expanded
        names.replacements[name] = text
    return names


def _collect_calendars(parsed: ParsedFile, names: Names, issues: list[ConfigIssue]) -> None:
    for name, spec in parsed.header.calendars.items():
        path: Path = ("calendars", name)
        try:
            calendar = build_calendar(
                name, spec.timezone, list(spec.days), spec.hours, spec.holidays
            )
        except CalendarError as exc:
            names.broken_calendars.add(name)
            issues.append(
                ConfigIssue(
                    IssueCode.WRONG_TYPE,
                    f"calendar '{name}': {exc}",
                    parsed.locator.value((*path, *exc.field)),
                    hint=exc.hint,
                )
            )
            continue
        if _claim(names, name, parsed.locator, path, issues):
            names.calendars[name] = calendar


def _claim(
    names: Names, name: str, locator: Locator, path: Path, issues: list[ConfigIssue]
) -> bool:
    where = locator.key(path)
    if name in names.defined_at:
        issues.append(
            ConfigIssue(
                IssueCode.DUPLICATE_NAME,
                f"'{name}' is already defined at {names.defined_at[name]}",
                where,
                hint="lists, macros and calendars share one namespace across files; rename one",
            )
        )
        return False
    names.defined_at[name] = where
    return True


def syntax_issue(
    loc: Locator, path: Path, line: int, col: int, message: str, rule_id: str | None
) -> ConfigIssue:
    """A CEL syntax error at its place inside the YAML scalar."""
    return ConfigIssue(
        IssueCode.CEL_SYNTAX,
        f"CEL: {message}",
        loc.inside_scalar(path, line, col),
        rule_id,
        "CEL uses && || ! ==, quotes for strings, `x in list` and `has(x.field)`",
    )
