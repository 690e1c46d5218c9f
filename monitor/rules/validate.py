"""Checks across files: a `stable` rule must be covered by a rule test (`*.test.yaml`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from monitor.authoring.ruletests import RuleTestFileSpec
from monitor.config import read
from monitor.config.locate import to_plain
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.rules.compiled import CompiledRule
from monitor.rules.loader import TEST_SUFFIXES


def tested_rule_ids(paths: Iterable[Path]) -> set[str]:
    """Rule ids the rule tests under the given paths expect an alert of (`tests[].expect[].rule`).

    The files are read as rule test files (`monitor.config.read`, no schema check: a test with
    a mistake elsewhere still says which rules it tests), not searched: a comment or a test name
    mentioning a rule does not count. A test file that does not parse tests nothing (`cxmon
    test` reports why)."""
    found: set[str] = set()
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else sorted(path.parent.glob("*"))
        for candidate in candidates:
            if candidate.is_file() and candidate.name.endswith(TEST_SUFFIXES):
                root, _, _ = read(candidate, RuleTestFileSpec)
                found |= _expected_rules(to_plain(root))
    return found


def _expected_rules(root: Any) -> set[str]:
    tests = root.get("tests") if isinstance(root, dict) else None
    found: set[str] = set()
    for case in tests if isinstance(tests, list) else []:
        expect = case.get("expect") if isinstance(case, dict) else None
        for alert in expect if isinstance(expect, list) else []:
            if isinstance(alert, dict) and isinstance(alert.get("rule"), str):
                found.add(alert["rule"])
    return found


def untested_stable_rules(
    rules: Iterable[CompiledRule], paths: Iterable[Path]
) -> list[ConfigIssue]:
    """An issue for each `status: stable` rule that no rule test expects."""
    stable = [r for r in rules if r.status == "stable"]
    if not stable:
        return []
    tested = tested_rule_ids(paths)
    return [
        ConfigIssue(
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
