"""Read rule files: YAML -> validated `*Spec`s plus every issue with its position. Never raises on content."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from monitor.errors import IssueCode, RuleIssue, SourceLocation
from monitor.rules.locate import Locator, parse_yaml, to_plain
from monitor.rules.schema import DefaultsSpec, MatcherSpec, RuleFileSpec, RuleSpec

RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")


@dataclass(frozen=True)
class ParsedRule:
    """A rule that passed schema validation, with the means to locate its parts."""

    spec: RuleSpec
    path: tuple[str | int, ...]
    locator: Locator


@dataclass(frozen=True)
class ParsedFile:
    """One rule file after schema validation (rules that failed are left out)."""

    file: str
    header: RuleFileSpec
    rules: list[ParsedRule]
    locator: Locator
    # Rules that failed the schema, as written: their expressions are still checked so that
    # one run of `cxmon validate` reports every problem.
    rejected: list[tuple[dict[str, Any], tuple[str | int, ...]]] = field(default_factory=list)


@dataclass
class ReadResult:
    """What reading a set of files produced."""

    files: list[ParsedFile] = field(default_factory=list)
    issues: list[RuleIssue] = field(default_factory=list)


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Rule files under the given files/directories, sorted; rule tests are left out."""
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.extend(
            p
            for p in candidates
            if p.is_file()
            and p.name.endswith(RULE_SUFFIXES)
            and not p.name.endswith(TEST_SUFFIXES)
            and not _hidden(p, path)
        )
    return found


def _hidden(file: Path, root: Path) -> bool:
    """A dot file, or a file in a dot directory under the root: editors' backups, and the
    `..data/` copies a Kubernetes ConfigMap volume keeps beside its links."""
    parts = file.relative_to(root).parts if file != root else (file.name,)
    return any(part.startswith(".") for part in parts)


def read_rule_files(files: Sequence[Path]) -> ReadResult:
    """Parse and schema-check each file; collect every issue."""
    result = ReadResult()
    for path in files:
        parsed, issues = read_rule_file(path)
        result.issues.extend(issues)
        if parsed is not None:
            result.files.append(parsed)
    return result


def read_rule_file(path: Path) -> tuple[ParsedFile | None, list[RuleIssue]]:
    """One file -> its header and valid rules, and the issues of the rest. Raises only OSError."""
    text = path.read_text(encoding="utf-8")
    name = str(path)
    root, locator, syntax = parse_yaml(name, text)
    if locator is None:
        return None, [syntax] if syntax else []
    if not isinstance(root, dict):
        return None, [
            RuleIssue(
                IssueCode.WRONG_TYPE,
                "a rule file must be a mapping with `version: 1` and `rules:`",
                SourceLocation(name, 1, 1),
            )
        ]
    if root.get("version") != 1:
        where = locator.value(("version",)) if "version" in root else SourceLocation(name, 1, 1)
        return None, [
            RuleIssue(
                IssueCode.FILE_VERSION,
                f"unsupported rule file version {root.get('version')!r}"
                if "version" in root
                else "the file does not say which format version it uses",
                where,
                hint="start the file with `version: 1`",
            )
        ]
    return _validate(name, root, locator)


def _validate(name: str, root: Any, locator: Locator) -> tuple[ParsedFile | None, list[RuleIssue]]:
    plain = to_plain(root)
    raw_rules = plain.pop("rules", None) or []
    issues: list[RuleIssue] = []
    try:
        header = RuleFileSpec.model_validate(plain)
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc, (), locator, None, RuleFileSpec))
        return None, issues
    if not isinstance(raw_rules, list):
        issues.append(
            RuleIssue(IssueCode.WRONG_TYPE, "`rules` must be a list", locator.value(("rules",)))
        )
        return None, issues
    rules: list[ParsedRule] = []
    rejected: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
    defaults = header.defaults.model_dump(exclude_none=True, mode="python")
    for index, raw in enumerate(raw_rules):
        path: tuple[str | int, ...] = ("rules", index)
        rule_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(raw, dict):
            issues.append(
                RuleIssue(IssueCode.WRONG_TYPE, "each rule must be a mapping", locator.value(path))
            )
            continue
        try:
            spec = RuleSpec.model_validate(_with_defaults(raw, defaults))
        except ValidationError as exc:
            issues.extend(pydantic_issues(exc, path, locator, rule_id, RuleSpec))
            rejected.append((raw, path))
            continue
        rules.append(ParsedRule(spec, path, locator))
    return ParsedFile(name, header, rules, locator, rejected), issues


def _with_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **raw}
    if "labels" in defaults and isinstance(raw.get("labels"), dict):
        merged["labels"] = {**defaults["labels"], **raw["labels"]}
    return merged


def pydantic_issues(
    exc: ValidationError,
    base: tuple[str | int, ...],
    locator: Locator,
    rule_id: str | None,
    model: type[BaseModel],
) -> list[RuleIssue]:
    """Turn pydantic's errors into positioned issues, one per location."""
    issues: dict[tuple[Any, ...], RuleIssue] = {}
    for error in exc.errors():
        loc = (*base, *error["loc"])
        found, node = locator.resolve(loc)
        kind = error["type"]
        if kind == "duration" and isinstance(node, dict):
            continue  # the mapping form of a union (business time) reports its own errors
        if found in issues and kind != "duration":
            continue
        issues[found] = _issue(error, loc, found, node, locator, rule_id, model)
    return list(issues.values())


def _issue(
    error: Any,
    loc: tuple[Any, ...],
    found: tuple[str | int, ...],
    node: Any,
    locator: Locator,
    rule_id: str | None,
    model: type[BaseModel],
) -> RuleIssue:
    kind = error["type"]
    field_name = str(loc[-1])
    if kind == "extra_forbidden":
        allowed = _allowed_fields(locator, found, model)
        close = difflib.get_close_matches(field_name, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(allowed)}"
        return RuleIssue(
            IssueCode.UNKNOWN_FIELD,
            f"unknown field '{field_name}'",
            locator.key(found),
            rule_id,
            hint,
        )
    if kind == "missing":
        return RuleIssue(
            IssueCode.MISSING_FIELD,
            f"missing required field '{field_name}'",
            locator.value(found),
            rule_id,
            f"add `{field_name}:`",
        )
    if kind == "duration":
        return RuleIssue(
            IssueCode.RULE_DURATION,
            error["msg"],
            locator.value(found),
            rule_id,
            "write a number and a unit: 90s, 15m, 4h, 2d, 1w",
        )
    where = ".".join(str(p) for p in found[2:] if isinstance(p, str)) or field_name
    return RuleIssue(
        IssueCode.WRONG_TYPE,
        f"{where}: {error['msg'].lower()}",
        locator.value(found),
        rule_id,
        None,
    )


def _allowed_fields(
    locator: Locator, found: tuple[str | int, ...], model: type[BaseModel]
) -> list[str]:
    """Field names valid at the mapping that holds an unknown key."""
    parent = [p for p in found[:-1] if isinstance(p, str)]
    if model is RuleSpec and parent and parent[-1] in RuleSpec.model_fields:
        target: type[BaseModel] = MatcherSpec
    elif model is RuleFileSpec and parent == ["defaults"]:
        target = DefaultsSpec
    else:
        target = model
    return sorted(target.model_fields)
