"""Rule tests (`*.test.yaml`): the shipped pack passes, failures show a diff, bad files are located."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from monitor.authoring.ruletests import (
    collect_test_files,
    parse_offset,
    run_rule_tests,
    run_test_file,
)
from monitor.errors import IssueCode

RULES = Path(__file__).resolve().parents[3] / "rules"
SHIPPED_TESTS = [RULES / "billing.test.yaml", RULES / "handoffs.test.yaml"]
runner = CliRunner()

WRONG = """\
rule_files: [{rules}]
tests:
  - name: charge after a waiver, expected at the wrong time
    events:
      - {{at: 0s, source: support, type: fee.waiver_promised, subject: c1, data: {{fee_code: late_fee}}}}
      - {{at: 3d, source: billing, type: invoice.charged, subject: c1,
          data: {{fee_code: late_fee, amount: 25}}}}
    expect:
      - {{rule: billing-charges-waived-fee, key: c1, status: firing, at: 2d}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.test.yaml"
    path.write_text(text.format(rules=RULES / "billing.yaml"))
    return path


def test_directories_are_searched_for_test_files() -> None:
    assert set(SHIPPED_TESTS) <= {p.resolve() for p in collect_test_files([RULES])}


def test_shipped_rule_tests_pass() -> None:
    results = run_rule_tests([RULES])
    assert len(results) >= 4
    for result in results:
        assert result.issues == [], [str(i) for i in result.issues]
        assert result.cases
        assert [c.name for c in result.cases if not c.passed] == []


def test_wrong_expectation_fails_with_a_diff_naming_the_missing_alert(tmp_path: Path) -> None:
    result = run_test_file(write(tmp_path, WRONG))
    [case] = result.cases
    assert not result.passed
    assert case.diff() == [
        "- missing:    firing billing-charges-waived-fee key=c1 at 2d",
        "+ unexpected: firing billing-charges-waived-fee key=c1 at 3d",
    ]
    assert case.location.line == 3


def test_expectation_without_at_matches_any_time(tmp_path: Path) -> None:
    result = run_test_file(write(tmp_path, WRONG.replace(", at: 2d}}", "}}")))
    assert result.passed


def test_stalled_rule_without_follow_up_fires_by_default_evaluation(tmp_path: Path) -> None:
    text = """\
rule_files: [{rules}]
tests:
  - name: no kickoff
    events: [{{at: 0, source: sales, type: deal.closed, subject: c1, data: {{deal_id: d1}}}}]
    expect: [{{rule: sales-onboarding-handoff-stalled, key: c1, at: 3d}}]
"""
    path = tmp_path / "h.test.yaml"
    path.write_text(text.format(rules=RULES / "handoffs.yaml"))
    assert run_test_file(path).passed


def test_unknown_field_is_reported_with_its_position(tmp_path: Path) -> None:
    text = WRONG.replace("      - {{at: 0s,", "      - {{att: 0s,")
    result = run_test_file(write(tmp_path, text))
    assert result.cases == []
    [issue] = result.issues
    assert issue.code == IssueCode.UNKNOWN_FIELD
    assert (issue.location.line, issue.location.col) == (5, 10)
    assert issue.hint == "did you mean 'at'?"


def test_unknown_rule_in_expect_is_an_issue(tmp_path: Path) -> None:
    result = run_test_file(write(tmp_path, WRONG.replace("waived-fee, key", "waived-fees, key")))
    [issue] = result.issues
    assert issue.code == IssueCode.UNKNOWN_NAME
    assert issue.location.line == 9
    assert issue.hint == "did you mean 'billing-charges-waived-fee'?"


def test_yaml_error_is_reported_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.test.yaml"
    path.write_text("rule_files: [billing.yaml\ntests: []\n")
    [issue] = run_test_file(path).issues
    assert issue.code == IssueCode.YAML_SYNTAX
    assert issue.location.line == 2


@pytest.mark.parametrize(
    ("text", "expected"), [("0s", 0), ("0", 0), (0, 0), ("0d0h", 0), ("3d", 259200)]
)
def test_offsets_may_be_zero(text: str | int, expected: int) -> None:
    assert parse_offset(text) == timedelta(seconds=expected)


def test_cli_test_passes_on_the_shipped_pack() -> None:
    result = runner.invoke(app, ["test", *map(str, SHIPPED_TESTS)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert " 0 failed" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when not on a terminal


def test_cli_test_fails_with_the_diff(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(write(tmp_path, WRONG))])
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "- missing:    firing billing-charges-waived-fee key=c1 at 2d" in result.stdout
    assert "0 passed, 1 failed" in result.stdout


def test_cli_test_exits_1_when_no_tests_are_found(tmp_path: Path) -> None:
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "no rule tests" in result.stdout


def test_every_shipped_rule_has_a_rule_test_that_expects_it_to_fire() -> None:
    from monitor.rules import load_rules

    expected: set[str] = set()
    for path in collect_test_files([RULES]):
        expected |= set(re.findall(r"rule: ([a-z0-9-]+)", path.read_text()))
    assert {r.id for r in load_rules([RULES]).rules} <= expected
