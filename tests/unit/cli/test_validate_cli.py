"""`cxmon validate`: one line per problem, exit codes, and the stable-needs-a-test rule."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

RULES = Path(__file__).resolve().parents[3] / "rules"
runner = CliRunner()

STABLE_RULE = """version: 1
rules:
  - id: stable-without-a-test
    title: A rule declared stable that no rule test covers
    kind: contradiction
    status: stable
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: invoice.charged}
    within: 30d
"""


def test_shipped_pack_validates() -> None:
    result = runner.invoke(app, ["validate", str(RULES)])
    assert result.exit_code == 0, result.output


def test_stable_rule_without_a_rule_test_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "stable.yaml").write_text(STABLE_RULE)
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "stable.yaml:3:5: error[RULE_UNTESTED] rule 'stable-without-a-test'" in result.output


def test_stable_rule_with_a_rule_test_validates(tmp_path: Path) -> None:
    (tmp_path / "stable.yaml").write_text(STABLE_RULE)
    (tmp_path / "stable.test.yaml").write_text(
        "rule_files: [stable.yaml]\n"
        "tests:\n"
        "  - name: fires\n"
        "    events:\n"
        "      - {at: 0s, source: support, type: fee.waiver_promised, subject: c1}\n"
        "      - {at: 1d, source: billing, type: invoice.charged, subject: c1}\n"
        "    expect:\n"
        "      - {rule: stable-without-a-test, key: c1}\n"
    )
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_broken_copy_of_the_pack_reports_each_problem_on_its_own_line(tmp_path: Path) -> None:
    shutil.copytree(RULES, tmp_path / "rules")
    billing = tmp_path / "rules" / "billing.yaml"
    text = billing.read_text()
    text = text.replace("within: 30d", "within: 30 days").replace("    message:", "    mesage:", 1)
    billing.write_text(text)
    result = runner.invoke(app, ["validate", str(tmp_path / "rules")])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if "error[" in line]
    assert any("RULE_DURATION" in line for line in errors)
    assert any("UNKNOWN_FIELD" in line and "mesage" in line for line in errors)
    assert all(line.startswith(str(billing)) for line in errors)
