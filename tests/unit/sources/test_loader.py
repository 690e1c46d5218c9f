"""Loading mapping files: every problem of a broken file at its position; the shipped ones clean;
the shipped mapping tests pass and a wrong expectation fails."""

from __future__ import annotations

from pathlib import Path

from monitor.errors import IssueCode
from monitor.rules import load_rules
from monitor.sources import load_sources
from monitor.sources.loader import departments_named, mapping_files
from monitor.sources.mappingtests import run_mapping_test_file

ROOT = Path(__file__).resolve().parents[3]
BROKEN = ROOT / "tests" / "unit" / "bad_sources" / "broken.yaml"
SOURCES = ROOT / "sources"


def test_a_broken_mapping_file_reports_every_problem_with_its_position() -> None:
    loaded = load_sources([BROKEN], departments={"support", "billing"})
    found = [(i.location.line, i.location.col, i.code, i.severity) for i in loaded.issues]
    assert found == [
        (4, 27, IssueCode.CEL_SYNTAX, "error"),  # macro body
        (5, 11, IssueCode.UNKNOWN_NAME, "error"),  # a name in a macro body
        (9, 10, IssueCode.UNKNOWN_NAME, "error"),  # 'tiket'
        (10, 37, IssueCode.CEL_SYNTAX, "error"),
        (13, 5, IssueCode.MISSING_FIELD, "error"),  # subject
        (18, 16, IssueCode.WRONG_TYPE, "error"),  # time_unit: seconds
        (19, 12, IssueCode.DUPLICATE_TOPIC, "error"),
        (22, 12, IssueCode.UNKNOWN_NAME, "error"),  # an unquoted constant
        (25, 5, IssueCode.UNKNOWN_FIELD, "error"),  # dta
        (27, 17, IssueCode.UNUSED_DEPARTMENT, "warning"),
        (32, 5, IssueCode.MISSING_FIELD, "error"),  # neither department nor source
    ]
    hints = {i.code: i.hint for i in loaded.issues}
    assert hints[IssueCode.UNKNOWN_FIELD] == "did you mean 'data'?"
    assert "\"'invoice'\"" in (hints[IssueCode.UNKNOWN_NAME] or "")
    assert loaded.mappings.topics == ["warehouse.moves"]  # only the entry without errors


def test_shipped_mappings_load_cleanly_against_the_shipped_rules() -> None:
    rules = load_rules([ROOT / "rules"])
    loaded = load_sources([SOURCES], departments=departments_named(rules.rules))
    assert loaded.issues == []
    assert loaded.mappings.topics == ["helpdesk.tickets", "payments.webhooks", "shop.public.orders"]


def test_rule_files_and_tests_are_not_mapping_files(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("version: 1\nrules: []\n")
    (tmp_path / "m.yaml").write_text("version: 1\nsources: []\n")
    (tmp_path / "m.test.yaml").write_text("source_files: [m.yaml]\n")
    assert mapping_files([tmp_path, tmp_path / "missing"]) == [tmp_path / "m.yaml"]


def test_shipped_mapping_tests_pass() -> None:
    files = sorted(SOURCES.glob("*.test.yaml"))
    assert len(files) == 3
    for path in files:
        result = run_mapping_test_file(path)
        assert result.issues == [], result.issues
        assert result.cases and all(c.passed for c in result.cases), [
            (c.name, c.problems) for c in result.cases if not c.passed
        ]


def test_a_wrong_expectation_fails_with_the_difference(tmp_path: Path) -> None:
    test = tmp_path / "wrong.test.yaml"
    test.write_text(
        f"source_files: [{SOURCES / 'payments.yaml'}]\n"
        "tests:\n"
        "  - name: expects the wrong type and a skip\n"
        "    record: {value: {id: e1, type: charge.succeeded, created: 0,\n"
        "             data: {object: {id: c, amount: 1, currency: eur,\n"
        "                             metadata: {customer_id: c1}}}}}\n"
        "    expect: {event: {type: invoice.issued, time: '1970-01-01T00:00:00Z'}}\n"
        "  - name: expects a skip\n"
        "    record: {raw: 'not json'}\n"
        "    expect: skipped\n"
    )
    result = run_mapping_test_file(test)
    assert result.issues == []
    first, second = result.cases
    assert first.problems == ["type: expected 'invoice.issued', got 'invoice.charged'"]
    assert not second.passed and "rejected (mapping_failed, field value)" in second.problems[0]


def test_a_test_naming_an_unmapped_topic_is_located(tmp_path: Path) -> None:
    test = tmp_path / "t.test.yaml"
    test.write_text(
        f"source_files: [{SOURCES / 'payments.yaml'}, {SOURCES / 'helpdesk.yaml'}]\n"
        "tests:\n"
        "  - name: no topic\n"
        "    record: {value: {}}\n"
        "    expect: skipped\n"
    )
    result = run_mapping_test_file(test)
    assert [(i.code, i.location.line) for i in result.issues] == [(IssueCode.UNKNOWN_NAME, 3)]
