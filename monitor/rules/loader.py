"""Read rule files: YAML -> validated `*Spec`s plus every issue with its position. Never raises on content."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config import read, validate
from monitor.config.locate import Locator, to_plain
from monitor.errors import ConfigIssue, IssueCode
from monitor.rules.schema import RuleFileSpec, RuleSpec

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
    issues: list[ConfigIssue] = field(default_factory=list)


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


def read_rule_file(path: Path) -> tuple[ParsedFile | None, list[ConfigIssue]]:
    """One file -> its header and valid rules, and the issues of the rest. Raises only OSError."""
    root, locator, issues = read(path, RuleFileSpec)
    if locator is None:
        return None, issues
    plain = to_plain(root)
    raw_rules = plain.pop("rules", None) or []
    header, issues = validate(plain, RuleFileSpec, locator)
    if header is None:
        return None, issues
    if not isinstance(raw_rules, list):
        where = locator.value(("rules",))
        return None, [ConfigIssue(IssueCode.WRONG_TYPE, "`rules` must be a list", where)]
    rules: list[ParsedRule] = []
    rejected: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
    defaults = header.defaults.model_dump(exclude_none=True, mode="python")
    for index, raw in enumerate(raw_rules):
        at: tuple[str | int, ...] = ("rules", index)
        if not isinstance(raw, dict):
            where = locator.value(at)
            issues.append(ConfigIssue(IssueCode.WRONG_TYPE, "each rule must be a mapping", where))
            continue
        spec, found = validate(_with_defaults(raw, defaults), RuleSpec, locator, at, raw.get("id"))
        if spec is None:
            issues.extend(found)
            rejected.append((raw, at))
        else:
            rules.append(ParsedRule(spec, at, locator))
    return ParsedFile(str(path), header, rules, locator, rejected), issues


def _with_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **raw}
    if "labels" in defaults and isinstance(raw.get("labels"), dict):
        merged["labels"] = {**defaults["labels"], **raw["labels"]}
    return merged
