"""Checks across files: a `stable` rule must be covered by a rule test (`*.test.yaml`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from monitor.errors import IssueCode, RuleIssue, SourceLocation
from monitor.rules.compiled import CompiledRule
from monitor.rules.loader import TEST_SUFFIXES

_EXPECTED_RULE = re.compile(r"\brule:\s*['\"]?([a-z0-9][a-z0-9-]*)")


def tested_rule_ids(paths: Iterable[Path]) -> set[str]:
    """Rule ids named in the expectations of the rule tests under the given paths."""
    found: set[str] = set()
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else sorted(path.parent.glob("*"))
        for candidate in candidates:
            if candidate.is_file() and candidate.name.endswith(TEST_SUFFIXES):
                found |= set(_EXPECTED_RULE.findall(candidate.read_text(encoding="utf-8")))
    return found


def untested_stable_rules(rules: Iterable[CompiledRule], paths: Iterable[Path]) -> list[RuleIssue]:
    """An issue for each `status: stable` rule that no rule test expects."""
    stable = [r for r in rules if r.status == "stable"]
    if not stable:
        return []
    tested = tested_rule_ids(paths)
    return [
        RuleIssue(
            IssueCode.RULE_UNTESTED,
            "the rule is marked stable but no rule test expects it",
            SourceLocation(rule.file, rule.line, rule.col),
            rule.id,
            "add a case to a *.test.yaml next to the rule (see `cxmon test`), "
            "or mark it `status: test`",
        )
        for rule in stable
        if rule.id not in tested
    ]
