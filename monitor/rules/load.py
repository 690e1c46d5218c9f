"""`load_rules`: read, compile and limit a set of rule files in one call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.rules.compiled import CompiledRule
from monitor.rules.compiler import compile_rules
from monitor.rules.limits import RuleLimits, apply_limits, oversized_files, too_many_rules
from monitor.rules.loader import collect_files, read_rule_files
from monitor.rules.warnings import rule_set_warnings


@dataclass(frozen=True)
class LoadResult:
    """The compiled rules and every issue found; `errors` says whether it may be used."""

    rules: list[CompiledRule]
    issues: list[ConfigIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        """The issues that make the set unusable."""
        return [i for i in self.issues if i.severity == "error"]


def load_rules(paths: Iterable[Path], limits: RuleLimits | None = None) -> LoadResult:
    """Read, validate and compile rule files under `limits`; raises only for I/O errors."""
    limits = limits or RuleLimits()
    paths = list(paths)
    files = collect_files(paths)
    if not files:
        where = SourceLocation(", ".join(str(p) for p in paths) or ".")
        issue = ConfigIssue(IssueCode.NO_RULES, "no rule files (*.yaml) found", where)
        return LoadResult([], [issue])
    oversized = oversized_files(files, limits)
    skipped = {issue.location.file for issue in oversized}
    read = read_rule_files([f for f in files if str(f) not in skipped])
    rules, issues = compile_rules(read.files)
    rules, limited = apply_limits(rules, read.files, limits)
    counted = too_many_rules(read.files, limits)
    if counted:
        rules = []  # which rules to drop is the operator's choice, not ours
    warned = rule_set_warnings(read.files, rules)
    found = oversized + read.issues + issues + limited + counted + warned
    return LoadResult(rules, sorted(found, key=lambda i: i.location), [str(f) for f in files])
