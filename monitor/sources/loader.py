"""Read and compile source-mapping files: YAML -> `CompiledSource`s plus every issue, positioned.

Like the rule loader, this never raises on content: a broken file gives issues (`file:line:col`
and a hint) and the caller decides (`cxmon validate` exits 1, a worker refuses to start or keeps
the running mappings on a reload).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cel

from monitor.config import read, validate
from monitor.config.locate import Locator, to_plain
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.events.envelope import department_of
from monitor.events.mapping import SCOPE, CompiledField, CompiledSource, SourceMappings
from monitor.rules.compiled import CompiledRule
from monitor.rules.expressions import cel_literal, free_names, parse_error, rewrite
from monitor.rules.loader import collect_files
from monitor.sources.schema import CEL_FIELDS, MappingFileSpec, SourceSpec
from monitor.sources.shortcuts import PLAIN_PATH, shortcut

Path_ = tuple[str | int, ...]
_RULE_FILE = re.compile(r"(?m)^rules\s*:")
_MAPPING_FILE = re.compile(r"(?m)^sources\s*:")
MAX_MACRO_DEPTH = 8
CEL_HINT = "CEL uses && || ! ==, quotes for strings, `x in list` and `has(x.field)`"


@dataclass(frozen=True)
class SourceLoad:
    """The compiled mappings and every issue found; usable only without errors."""

    mappings: SourceMappings
    issues: list[ConfigIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        """The issues that make the set unusable."""
        return [i for i in self.issues if i.severity == "error"]


@dataclass
class _Parsed:
    file: str
    locator: Locator
    header: MappingFileSpec
    sources: list[tuple[SourceSpec, Path_]] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], Path_]] = field(default_factory=list)


@dataclass
class _Names:
    replacements: dict[str, str] = field(default_factory=dict)
    defined_at: dict[str, SourceLocation] = field(default_factory=dict)


def is_mapping_file(path: Path) -> bool:
    """Whether a YAML file is a source mapping (it has `sources:`) rather than a rule file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_MAPPING_FILE.search(text)) or not _RULE_FILE.search(text)


def mapping_files(paths: Iterable[Path]) -> list[Path]:
    """The mapping files under the given files/directories (rule files and tests left out)."""
    return [p for p in collect_files([p for p in paths if p.exists()]) if is_mapping_file(p)]


def departments_named(rules: Iterable[CompiledRule]) -> set[str]:
    """The departments the rules' matchers name in `source:`."""
    return {
        department_of(source)
        for rule in rules
        for matcher in rule.matchers
        for source in matcher.sources or ()
    }


def load_sources(paths: Iterable[Path], departments: Iterable[str] | None = None) -> SourceLoad:
    """Read, validate and compile every mapping file under `paths` (a missing path has none).

    With `departments` (the ones rules name), a mapping whose department is not among them is
    a warning. Raises only for I/O errors.
    """
    files = mapping_files(paths)
    issues: list[ConfigIssue] = []
    parsed = [p for p in (_read(f, issues) for f in files) if p is not None]
    names = _collect_names(parsed, issues)
    compiled: list[CompiledSource] = []
    seen: dict[str, SourceLocation] = {}
    known = set(departments) if departments is not None else None
    for mapping in parsed:
        loc = mapping.locator
        for spec, path in mapping.sources:
            before = len(issues)
            result = _compile_source(spec, path, loc, names, issues)
            compiled_cleanly = len(issues) == before
            where = loc.value((*path, "topic"))
            if spec.topic in seen:
                issues.append(_duplicate(spec.topic, seen[spec.topic], where))
                continue
            seen[spec.topic] = where
            if known is not None and spec.department and spec.department not in known:
                issues.append(
                    ConfigIssue(
                        IssueCode.UNUSED_DEPARTMENT,
                        f"no rule names department '{spec.department}'",
                        loc.value((*path, "department")),
                        hint="rules name departments in their matchers' `source:` "
                        f"(named now: {', '.join(sorted(known)) or 'none'}); rules without "
                        "`source:` still see these events",
                        severity="warning",
                    )
                )
            if result is not None and compiled_cleanly:
                compiled.append(result)
        for raw, path in mapping.rejected:
            topic = raw.get("topic")
            if isinstance(topic, str) and topic in seen:
                issues.append(_duplicate(topic, seen[topic], loc.value((*path, "topic"))))
            elif isinstance(topic, str):
                seen[topic] = loc.value((*path, "topic"))
            for name in CEL_FIELDS:  # so one run reports every problem of a broken entry
                if isinstance(raw.get(name), str):
                    _compile_field(name, raw[name], (*path, name), loc, names, issues)
    found = sorted(issues, key=lambda i: i.location)
    return SourceLoad(SourceMappings.of(compiled), found, [str(f) for f in files])


def _duplicate(topic: str, first: SourceLocation, where: SourceLocation) -> ConfigIssue:
    return ConfigIssue(
        IssueCode.DUPLICATE_TOPIC,
        f"topic '{topic}' is already mapped at {first}",
        where,
        hint="a topic has one mapping; merge the entries, using `when` and conditionals "
        "(c ? x : y) for the different records",
    )


def _read(path: Path, issues: list[ConfigIssue]) -> _Parsed | None:
    root, locator, problems = read(path, MappingFileSpec)
    issues.extend(problems)
    if locator is None:
        return None
    header, problems = validate(to_plain(root), MappingFileSpec, locator)
    issues.extend(problems)
    if header is None:
        return None
    parsed = _Parsed(str(path), locator, header)
    for index, raw in enumerate(header.sources):
        entry: Path_ = ("sources", index)
        if not isinstance(raw, dict):
            issues.append(
                ConfigIssue(
                    IssueCode.WRONG_TYPE,
                    "each source must be a mapping with `topic:` and its fields",
                    locator.value(entry),
                )
            )
            continue
        spec, problems = validate(raw, SourceSpec, locator, entry)
        issues.extend(problems)
        if spec is None:
            parsed.rejected.append((raw, entry))
            continue
        if spec.department is None and spec.source is None:
            issues.append(
                ConfigIssue(
                    IssueCode.MISSING_FIELD,
                    f"source '{spec.topic}' needs `department:` (or a `source:` expression)",
                    locator.key((*entry, "topic")),
                    hint="add `department: billing` (the department these records come from)",
                )
            )
            parsed.rejected.append((raw, entry))
            continue
        parsed.sources.append((spec, entry))
    return parsed


def _collect_names(files: list[_Parsed], issues: list[ConfigIssue]) -> _Names:
    """Lists and macros of every mapping file, one namespace, as CEL replacements."""
    names = _Names()
    bodies: list[tuple[str, str, Locator, Path_]] = []
    for parsed in files:
        for name, values in parsed.header.lists.items():
            if _claim(names, name, parsed.locator, ("lists", name), issues):
                names.replacements[name] = cel_literal(values)
        for name, body in parsed.header.macros.items():
            path: Path_ = ("macros", name)
            error = parse_error(body)
            if error is not None:
                where = parsed.locator.inside_scalar(path, error.line, error.col)
                message = f"macro '{name}': CEL: {error.message}"
                issues.append(ConfigIssue(IssueCode.CEL_SYNTAX, message, where, hint=CEL_HINT))
                continue
            if _claim(names, name, parsed.locator, path, issues):
                names.replacements[name] = body
                bodies.append((name, body, parsed.locator, path))
    for _name, body, locator, macro_path in bodies:
        _unknown_names(body, {*SCOPE, *names.replacements}, locator, macro_path, issues)
    for name in list(names.replacements):
        text = names.replacements[name]
        for _ in range(MAX_MACRO_DEPTH):
            expanded = rewrite(text, _wrapped(names.replacements))
            if expanded == text:
                break
            text = expanded
        names.replacements[name] = text
    names.replacements = _wrapped(names.replacements)
    return names


def _wrapped(replacements: dict[str, str]) -> dict[str, str]:
    """Macro bodies as they are substituted: a plain path stays bare (so the field is still a
    plain path, read without CEL), anything else in parentheses."""
    return {
        name: body.strip() if PLAIN_PATH.fullmatch(body) or _enclosed(body) else f"({body})"
        for name, body in replacements.items()
    }


def _enclosed(body: str) -> bool:
    """Whether the whole body is one parenthesised expression, `(a ? b : c)`."""
    text = body.strip()
    if not text.startswith("("):
        return False
    depth = 0
    for index, char in enumerate(text):  # quotes are rare in macro bodies; a miss only adds ()
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index == len(text) - 1
    return False


def _claim(names: _Names, name: str, loc: Locator, path: Path_, issues: list[ConfigIssue]) -> bool:
    where = loc.key(path)
    if name in SCOPE or name in names.defined_at:
        other = "a name every expression has" if name in SCOPE else f"at {names.defined_at[name]}"
        issues.append(
            ConfigIssue(
                IssueCode.DUPLICATE_NAME,
                f"'{name}' is already defined ({other})",
                where,
                hint="lists and macros share one namespace across mapping files; rename one",
            )
        )
        return False
    names.defined_at[name] = where
    return True


def _compile_source(
    spec: SourceSpec, path: Path_, loc: Locator, names: _Names, issues: list[ConfigIssue]
) -> CompiledSource | None:
    fields: dict[str, CompiledField | None] = {}
    for name in CEL_FIELDS:
        text = getattr(spec, name)
        fields[name] = (
            None if text is None else _compile_field(name, text, (*path, name), loc, names, issues)
        )
    required = ("id", "type", "time", "subject")
    if any(fields[n] is None for n in required) or any(
        getattr(spec, n) is not None and fields[n] is None for n in ("when", "source", "data")
    ):
        return None
    return CompiledSource(
        topic=spec.topic,
        department=spec.department,
        id=_present(fields["id"]),
        type=_present(fields["type"]),
        time=_present(fields["time"]),
        subject=_present(fields["subject"]),
        source=fields["source"],
        when=fields["when"],
        data=fields["data"],
        time_unit=spec.time_unit,
        file=loc.file,
        line=loc.value(path).line,
    )


def _present(compiled: CompiledField | None) -> CompiledField:
    assert compiled is not None  # noqa: S101 - checked by the caller
    return compiled


def _compile_field(
    name: str, text: str, path: Path_, loc: Locator, names: _Names, issues: list[ConfigIssue]
) -> CompiledField | None:
    error = parse_error(text)
    if error is not None:
        where = loc.inside_scalar(path, error.line, error.col)
        message = f"{name}: CEL: {error.message}"
        issues.append(ConfigIssue(IssueCode.CEL_SYNTAX, message, where, hint=CEL_HINT))
        return None
    if _unknown_names(text, {*SCOPE, *names.replacements}, loc, path, issues):
        return None
    expanded = rewrite(text, names.replacements)
    try:
        program = cel.compile(expanded)
    except ValueError as exc:  # a macro that parses alone but not where it is used
        issues.append(
            ConfigIssue(
                IssueCode.CEL_SYNTAX,
                f"{name}: CEL, with macros expanded: {str(exc).splitlines()[0]}",
                loc.value(path),
                hint=CEL_HINT,
            )
        )
        return None
    return shortcut(CompiledField(name, text, program), expanded)


def _unknown_names(
    text: str, known: set[str], loc: Locator, path: Path_, issues: list[ConfigIssue]
) -> bool:
    found = False
    for ident, offset in free_names(text):
        if ident in known:
            continue
        found = True
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        close = difflib.get_close_matches(ident, sorted(known), n=1)
        issues.append(
            ConfigIssue(
                IssueCode.UNKNOWN_NAME,
                f"unknown name '{ident}'",
                loc.inside_scalar(path, line, col),
                hint=f"did you mean '{close[0]}'?"
                if close
                else f"in scope: {', '.join(SCOPE)} and the files' lists and macros; "
                f"a constant is a quoted CEL string: \"'{ident}'\"",
            )
        )
    return found
