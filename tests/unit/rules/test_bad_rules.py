"""Rule files with one mistake each: the loader names it, at the right place, and drops the rule.

Each `tests/unit/bad_rules/*.yaml` starts with `# expect: LINE:COL CODE`; a sub-folder is loaded
as a whole (for issues across files) and one of its files carries the expectation. A second line
`# xfail: why` marks a known wrong position (reported as a bug, not fixed here).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.rules import load_rules
from tests.unit.conftest import RULES_DIR

BAD_RULES = Path(__file__).parents[1] / "bad_rules"
EXPECT = re.compile(r"^# expect: (\d+):(\d+) ([A-Z_]+)$")
XFAIL = re.compile(r"^# xfail: (.+)$")
RULE_START = re.compile(r"^\s*- id:")
WARNINGS = {IssueCode.UNUSED_NAME, IssueCode.NEVER_FIRES}


@dataclass(frozen=True)
class Case:
    """What to load, and the issue it must report."""

    load: Path
    file: Path
    line: int
    col: int
    code: IssueCode
    xfail: str | None


def read_case(load: Path) -> Case:
    files = sorted(load.glob("*.yaml")) if load.is_dir() else [load]
    for file in files:
        first, second, *_ = [*file.read_text().splitlines(), "", ""]
        if expected := EXPECT.match(first):
            line, col, code = expected.groups()
            xfail = XFAIL.match(second)
            return Case(load, file, int(line), int(col), IssueCode(code), xfail and xfail.group(1))
    raise AssertionError(f"{load}: no file starts with '# expect: LINE:COL CODE'")


def cases() -> list[object]:
    params: list[object] = []
    for path in sorted(BAD_RULES.iterdir()):
        case = read_case(path)
        marks = [pytest.mark.xfail(reason=case.xfail, strict=True)] if case.xfail else []
        params.append(pytest.param(case, id=path.name, marks=marks))
    return params


def enclosing_rule_line(case: Case) -> int | None:
    """The line where the rule holding the expected issue starts (None: not inside a rule)."""
    lines = case.file.read_text().splitlines()
    starts = [n for n, text in enumerate(lines, 1) if RULE_START.match(text) and n <= case.line]
    return max(starts, default=None)


@pytest.mark.parametrize("case", cases())
def test_bad_rule_file_reports_its_issue_and_drops_the_rule(case: Case) -> None:
    result = load_rules([case.load])
    reported = [
        (i.location.line, i.location.col, i.code)
        for i in result.issues
        if Path(i.location.file) == case.file
    ]
    assert (case.line, case.col, case.code) in reported
    if case.code in WARNINGS:
        assert result.errors == []  # a warning never keeps a rule set from loading
        return
    broken = enclosing_rule_line(case)
    assert (str(case.file), broken) not in {(r.file, r.line) for r in result.rules}


def test_every_issue_code_has_a_bad_rule_file() -> None:
    covered = {read_case(path).code for path in BAD_RULES.iterdir()}
    # NO_RULES needs no file; RULE_UNTESTED is checked by `cxmon validate` (see test_validate_cli);
    # the size limits need huge files at their defaults (see tests/unit/security/test_limits.py);
    # the source-mapping codes are covered by tests/unit/bad_sources (test_loader.py)
    assert set(IssueCode) - covered == {
        IssueCode.DUPLICATE_TOPIC,
        IssueCode.UNUSED_DEPARTMENT,
        IssueCode.NO_RULES,
        IssueCode.RULE_UNTESTED,
        IssueCode.RULE_FILE_TOO_LARGE,
        IssueCode.TOO_MANY_RULES,
    }


def test_misspelled_field_hint_names_the_close_field() -> None:
    result = load_rules([BAD_RULES / "unknown_field.yaml"])
    assert [i.hint for i in result.issues] == ["did you mean 'message'?"]


def test_folder_without_rule_files_is_no_rules(tmp_path: Path) -> None:
    result = load_rules([tmp_path])
    assert [i.code for i in result.issues] == [IssueCode.NO_RULES]


def test_valid_file_loads_without_issues(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            lists:
              waivable_fees: [late_fee, setup_fee]
            rules:
              - id: waived-fee-charged
                title: Billing charged a waived fee
                kind: contradiction
                owners: [support, billing]
                first: {source: support, type: fee.waiver_promised,
                        where: "first.data.fee_code in waivable_fees"}
                then: {source: billing, type: invoice.charged,
                       where: "then.data.fee_code == first.data.fee_code"}
                within: 30d
                message: "{{ key }} was charged {{ then.data.amount }}"
            """
        )
    )
    result = load_rules([path])
    assert result.issues == []
    assert [r.id for r in result.rules] == ["waived-fee-charged"]


def test_shipped_rule_pack_loads_without_issues() -> None:
    result = load_rules([RULES_DIR])
    assert result.issues == []
    assert {r.kind for r in result.rules} == {
        "contradiction",
        "stalled",
        "requires",
        "during",
        "burst",
    }
    assert len(result.rules) >= 10


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            rules:
              - id: one
                title: A misspelled key and a window in words
                kind: stalled
                first: {source: sales, type: deal.closed}
                then: {source: onboarding, type: kickoff.held}
                within: 3 days
                mesage: hi
              - id: two
                title: A first condition reading then, and a broken template
                kind: contradiction
                first: {source: support, type: fee.waiver_promised, where: "then.data.x == 1"}
                then: {source: billing, type: invoice.charged}
                within: 30d
                message: "{{ oops"
            """
        )
    )
    result = load_rules([path])
    assert len(result.issues) >= 3
    assert {i.code for i in result.issues} == {
        IssueCode.RULE_DURATION,
        IssueCode.UNKNOWN_FIELD,
        IssueCode.CEL_SCOPE,
        IssueCode.TEMPLATE_SYNTAX,
    }
    assert result.rules == []


def test_rule_issue_prints_as_file_line_col_code_rule_message() -> None:
    issue = ConfigIssue(
        IssueCode.RULE_DURATION,
        "expected a duration like '15m', got '15 min'",
        SourceLocation("rules/billing.yaml", 14, 7),
        "billing-charges-waived-fee",
    )
    assert str(issue) == (
        "rules/billing.yaml:14:7: error[RULE_DURATION] rule 'billing-charges-waived-fee': "
        "expected a duration like '15m', got '15 min'"
    )


def test_rule_issue_prints_hint_on_its_own_line() -> None:
    issue = ConfigIssue(
        IssueCode.UNKNOWN_FIELD,
        "unknown field 'mesage'",
        SourceLocation("rules/x.yaml", 9, 5),
        "r",
        hint="did you mean 'message'?",
    )
    assert str(issue).splitlines() == [
        "rules/x.yaml:9:5: error[UNKNOWN_FIELD] rule 'r': unknown field 'mesage'",
        "  hint: did you mean 'message'?",
    ]


def test_file_level_issue_prints_without_rule() -> None:
    issue = load_rules([BAD_RULES / "file_version.yaml"]).issues[0]
    assert str(issue).splitlines()[0] == (
        f"{BAD_RULES / 'file_version.yaml'}:2:10: error[FILE_VERSION] "
        "unsupported rule file version 2"
    )
