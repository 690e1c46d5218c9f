"""Mistakes that used to crash a load, hide each other, or get the wrong hint: each is reported,
all in one run, at its place."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from monitor.errors import IssueCode
from monitor.issue_docs import ISSUE_DOCS
from monitor.rules import load_rules
from monitor.rules.validate import untested_stable_rules

STALLED = """\
    kind: stalled
    first: {source: sales, type: deal.closed}
    then: {source: onboarding, type: kickoff.held}
"""


def _load(tmp_path: Path, text: str) -> list[tuple[int, int, IssueCode, str, str | None]]:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    result = load_rules([path])
    return [(i.location.line, i.location.col, i.code, i.message, i.hint) for i in result.errors]


def test_unknown_filter_and_unknown_test_are_positioned_issues_not_a_crash(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\nrules:\n  - id: r\n    title: t\n"
        + STALLED
        + "    within: 3d\n"
        + '    message: "{{ first.time | wen }} {% if key is numbr %}x{% endif %}"\n',
    )
    assert issues == [
        (9, 31, IssueCode.TEMPLATE_FILTER, "message template: no filter named 'wen'",
         "did you mean 'when'?"),
        (9, 51, IssueCode.TEMPLATE_FILTER, "message template: no test named 'numbr'",
         "did you mean 'number'?"),
    ]  # fmt: skip


def test_count_outside_a_burst_is_a_template_name_issue(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\nrules:\n  - id: r\n    title: t\n"
        + STALLED
        + "    within: 3d\n"
        + '    message: "{{ count }} deals"\n',
    )
    [(line, col, code, message, _)] = issues
    assert (line, col, code) == (9, 18, IssueCode.TEMPLATE_NAME)
    assert "'count' is never set" in message


def test_burst_message_may_read_count_values_and_members(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        """\
        version: 1
        rules:
          - id: r
            title: t
            kind: burst
            match: {type: call.made}
            distinct: event.department
            threshold: 3
            within: 1d
            message: "{{ count }} of {{ values | join(', ') }}, first {{ match0.type }}"
        """,
    )
    assert issues == []


def test_bad_business_duration_and_unknown_calendar_are_both_reported(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\nrules:\n  - id: r\n    title: t\n"
        + STALLED
        + "    within: {business: 16 hours, calendar: emeaa}\n",
    )
    assert {(line, code) for line, _, code, _, _ in issues} == {
        (8, IssueCode.RULE_DURATION),
        (8, IssueCode.UNKNOWN_NAME),
    }


def test_a_misspelled_calendar_is_suggested_even_when_that_calendar_is_broken(
    tmp_path: Path,
) -> None:
    issues = _load(
        tmp_path,
        "version: 1\ncalendars:\n  emea: {timezone: Europe/Berln}\nrules:\n  - id: r\n"
        "    title: t\n" + STALLED + "    within: {business: 16h, calendar: emeaa}\n",
    )
    assert [(code, hint) for _, _, code, _, hint in issues] == [
        (IssueCode.WRONG_TYPE, "did you mean 'Europe/Berlin'?"),
        (IssueCode.UNKNOWN_NAME, "did you mean 'emea'?"),
    ]


def test_duplicate_id_is_reported_when_the_first_rule_has_another_error(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\nrules:\n  - id: r\n    title: t\n"
        + STALLED
        + "    within: 3 days\n"
        + "  - id: r\n    title: t2\n"
        + STALLED
        + "    within: 3d\n",
    )
    assert (9, 9, IssueCode.DUPLICATE_RULE) in {(li, co, c) for li, co, c, _, _ in issues}
    assert (8, 13, IssueCode.RULE_DURATION) in {(li, co, c) for li, co, c, _, _ in issues}


def test_bad_time_zone_is_one_issue_with_a_did_you_mean(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\ncalendars:\n  emea: {timezone: Europe/Berln}\nrules:\n  - id: r\n"
        "    title: t\n" + STALLED + "    within: {business: 16h, calendar: emea}\n",
    )
    assert issues == [
        (3, 20, IssueCode.WRONG_TYPE, "calendar 'emea': unknown time zone 'Europe/Berln'",
         "did you mean 'Europe/Berlin'?"),
    ]  # fmt: skip


def test_unquoted_holiday_dates_are_dates(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "version: 1\ncalendars:\n  emea: {holidays: [2026-12-25, '2026-12-26']}\nrules:\n"
        "  - id: r\n    title: t\n"
        + textwrap.indent(textwrap.dedent(STALLED), "    ")
        + "    within: {business: 8h, calendar: emea}\n"
    )
    result = load_rules([path])
    assert result.issues == []
    [rule] = result.rules
    assert rule.within is not None and rule.within.calendar is not None
    assert {str(d) for d in rule.within.calendar.holidays} == {"2026-12-25", "2026-12-26"}


def test_a_holiday_that_is_no_date_is_pointed_at(tmp_path: Path) -> None:
    issues = _load(
        tmp_path,
        "version: 1\ncalendars:\n  emea: {holidays: [2026-12-25, christmas]}\nrules: []\n",
    )
    assert issues == [
        (3, 33, IssueCode.WRONG_TYPE, "calendar 'emea': holiday 'christmas' is not a date",
         "holidays as YYYY-MM-DD, e.g. 2026-12-25"),
    ]  # fmt: skip


STABLE = (
    "version: 1\nrules:\n  - id: stable-rule\n    title: t\n    status: stable\n"
    "    kind: contradiction\n    first: {source: support, type: fee.waiver_promised}\n"
    "    then: {source: billing, type: invoice.charged}\n    within: 30d\n"
)


def test_a_comment_naming_a_stable_rule_is_no_test(tmp_path: Path) -> None:
    (tmp_path / "stable.yaml").write_text(STABLE)
    (tmp_path / "stable.test.yaml").write_text(
        "# rule: stable-rule is tested elsewhere\n"
        "rule_files: [stable.yaml]\n"
        "tests:\n"
        "  - name: 'quiet: nothing about rule: stable-rule'\n"
        "    events: []\n"
        "    expect: []\n"
    )
    [issue] = untested_stable_rules(load_rules([tmp_path]).rules, [tmp_path])
    assert (issue.code, issue.rule_id) == (IssueCode.RULE_UNTESTED, "stable-rule")


def test_a_test_expecting_a_stable_rule_covers_it(tmp_path: Path) -> None:
    (tmp_path / "stable.yaml").write_text(STABLE)
    (tmp_path / "stable.test.yaml").write_text(
        "rule_files: [stable.yaml]\ntests:\n  - name: fires\n    events: []\n"
        '    expect:\n      - rule: "stable-rule"\n        key: c1\n'
    )
    assert untested_stable_rules(load_rules([tmp_path]).rules, [tmp_path]) == []


def test_docs_list_every_issue_code_as_validate_explain_does() -> None:
    text = (Path(__file__).parents[3] / "docs" / "rules.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.*) \|$", text, re.MULTILINE))
    documented = {IssueCode(code): row.replace("\\|", "|") for code, row in rows.items()}
    assert documented == ISSUE_DOCS


def test_validate_explain_prints_the_meaning_of_a_code() -> None:
    shown = CliRunner().invoke(app, ["validate", "--explain", "template_name"])
    assert shown.exit_code == 0
    assert shown.output.startswith(f"TEMPLATE_NAME (error): {ISSUE_DOCS[IssueCode.TEMPLATE_NAME]}")
    assert "(warning)" in CliRunner().invoke(app, ["validate", "--explain", "NEVER_FIRES"]).output
    wrong = CliRunner().invoke(app, ["validate", "--explain", "CEL_SCOP"])
    assert wrong.exit_code == 2


def test_unused_names_and_a_constant_condition_are_warnings_that_load(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        'version: 1\nlists:\n  used: [a]\n  spare: [b]\nmacros:\n  is_a: "event.type in used"\n'
        "  never: \"'x' == 'y'\"\ncalendars:\n  idle: {}\nrules:\n  - id: r\n    title: t\n"
        + STALLED.replace("type: deal.closed}", 'type: deal.closed, where: "is_a"}')
        + "    cancel: {source: sales, type: deal.lost, where: never}\n    within: 3d\n"
    )
    result = load_rules([path])
    assert result.errors == []
    assert [r.id for r in result.rules] == ["r"]
    assert [(i.code, i.message) for i in result.issues] == [
        (IssueCode.UNUSED_NAME, "list 'spare' is not used by any rule"),
        (IssueCode.UNUSED_NAME, "calendar 'idle' is not used by any rule"),
        (
            IssueCode.NEVER_FIRES,
            "'cancel.where' is false whatever the event: 'cancel' never matches",
        ),
    ]
    assert {i.severity for i in result.issues} == {"warning"}
