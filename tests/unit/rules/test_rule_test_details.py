"""Rule tests can check what a channel will show: message, severity, labels, evidence."""

from __future__ import annotations

from pathlib import Path

from monitor.authoring.ruletests import run_test_file

RULES = Path(__file__).resolve().parents[3] / "rules"

CASE = """\
rule_files: [{rules}]
tests:
  - name: charge after a waiver
    events:
      - {{at: 0s, source: support, type: fee.waiver_promised, subject: c1, data: {{fee_code: late_fee}}}}
      - {{at: 3d, source: billing, type: invoice.charged, subject: c1,
          data: {{fee_code: late_fee, amount: 25}}}}
    expect:
      - rule: billing-charges-waived-fee
        key: c1
        at: 3d
{details}
"""
RIGHT = """\
        severity: high
        message: c1 was charged 25 for late_fee 3 days after support promised to waive it
        evidence:
          - {source: support, type: fee.waiver_promised, at: 0s}
          - {source: billing, at: 3d}
"""


def _run(tmp_path: Path, details: str) -> list[str]:
    path = tmp_path / "case.test.yaml"
    path.write_text(CASE.format(rules=RULES / "billing.yaml", details=details))
    result = run_test_file(path)
    assert result.errors == []
    [case] = result.cases
    return case.diff()


def test_expected_message_severity_and_evidence_pass(tmp_path: Path) -> None:
    assert _run(tmp_path, RIGHT) == []


def test_another_message_is_a_difference_not_a_missing_alert(tmp_path: Path) -> None:
    diff = _run(tmp_path, "        message: c1 was charged\n")
    assert diff == [
        "~ differs:    firing billing-charges-waived-fee key=c1 at 3d: message: expected "
        "'c1 was charged', got 'c1 was charged 25 for late_fee 3 days after support promised "
        "to waive it'"
    ]


def test_severity_labels_and_evidence_are_each_compared(tmp_path: Path) -> None:
    diff = _run(
        tmp_path,
        "        severity: low\n        labels: {team: nobody}\n"
        "        evidence: [{source: billing, type: invoice.charged}]\n",
    )
    assert [line.split(": ", 2)[2].split(":")[0] for line in diff] == [
        "severity",
        "labels",
        "evidence",
    ]
    assert "got support fee.waiver_promised at 0s, billing invoice.charged at 3d" in diff[2]
