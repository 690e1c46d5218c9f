"""Rule files: the format (schema), reading (loader), compiling (compiler) — and `load_rules`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import IssueCode, RuleIssue, SourceLocation
from monitor.rules.compiled import CompiledMatcher, CompiledRule
from monitor.rules.compiler import compile_rules
from monitor.rules.loader import collect_files, read_rule_files

__all__ = ["CompiledMatcher", "CompiledRule", "LoadResult", "load_rules"]


@dataclass(frozen=True)
class LoadResult:
    """The compiled rules and every issue found; `errors` says whether it may be used."""

    rules: list[CompiledRule]
    issues: list[RuleIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[RuleIssue]:
        """The issues that make the set unusable."""
        return [i for i in self.issues if i.severity == "error"]


def load_rules(paths: Iterable[Path]) -> LoadResult:
    """Read, validate and compile rule files; raises only for I/O errors."""
    paths = list(paths)
    files = collect_files(paths)
    if not files:
        where = SourceLocation(", ".join(str(p) for p in paths) or ".")
        issue = RuleIssue(IssueCode.NO_RULES, "no rule files (*.yaml) found", where)
        return LoadResult([], [issue])
    read = read_rule_files(files)
    rules, issues = compile_rules(read.files)
    return LoadResult(
        rules, sorted(read.issues + issues, key=lambda i: i.location), [str(f) for f in files]
    )
