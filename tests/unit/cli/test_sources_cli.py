"""Source mappings through the CLI: `validate`, mapping tests in `test`, `replay --as-topic`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from cli.main import app

ROOT = Path(__file__).resolve().parents[3]
SOURCES = ROOT / "sources"
RULES = ROOT / "rules"
runner = CliRunner()


def _ticket(event: str, at: str, **extra: str) -> dict[str, object]:
    ticket = {"ticket_id": "T-1", "updated_at": at, "requester": {"external_id": "cust-1"}}
    return {"event": event, "ticket": {**ticket, **extra}}


def test_validate_reports_each_mapping_problem_and_fails() -> None:
    result = runner.invoke(app, ["validate", str(ROOT / "tests" / "unit" / "bad_sources")])
    assert result.exit_code == 1
    assert "broken.yaml:9:10: error[UNKNOWN_NAME] unknown name 'tiket'" in result.output
    assert "broken.yaml:19:12: error[DUPLICATE_TOPIC]" in result.output
    assert "10 error(s), 1 warning(s)" in result.output


def test_validate_accepts_rules_and_mappings_together() -> None:
    result = runner.invoke(app, ["validate", str(RULES), str(SOURCES)])
    assert result.exit_code == 0, result.output
    assert "3 source mappings in 3 files" in result.output


def test_test_runs_rule_and_mapping_tests() -> None:
    result = runner.invoke(app, ["test", str(RULES), "--sources", str(SOURCES)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output and "payments.test.yaml" in result.output
    assert "billing.test.yaml" in result.output


def test_replay_as_topic_maps_raw_records_and_lists_rejects(tmp_path: Path) -> None:
    lines = [
        json.dumps(_ticket("customer_replied", "2026-05-04T09:00:00Z")),
        json.dumps(_ticket("closed", "2026-05-04T09:10:00Z")),
        json.dumps({"event": "deleted", "ticket": {}}),
        '{"event": ',
    ]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n")
    args = ["replay", str(raw), "--rules", str(RULES), "--sources", str(SOURCES)]
    result = runner.invoke(app, [*args, "--as-topic", "helpdesk.tickets", "--format", "json"])
    assert result.exit_code == 0, result.output
    alerts = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(a["rule_id"], a["key"]) for a in alerts] == [
        ("ticket-closed-while-customer-replying", "cust-1")
    ]
    assert [e["department"] for e in alerts[0]["evidence"]] == ["support", "support"]
    assert "2 events, 1 rejected, 1 skipped by the mapping" in result.output
    assert "line 4: mapping_failed: value: not JSON" in result.output


def test_replay_records_reads_key_value_and_timestamp(tmp_path: Path) -> None:
    record = {"key": "T-1", "value": _ticket("opened", "2026-05-04T09:00:00Z"), "timestamp": 0}
    raw = tmp_path / "records.jsonl"
    raw.write_text(json.dumps(record) + "\n")
    args = ["replay", str(raw), "--rules", str(RULES), "--sources", str(SOURCES)]
    result = runner.invoke(app, [*args, "--as-topic", "helpdesk.tickets", "--records"])
    assert result.exit_code == 0, result.output
    assert "replay: 1 events, 0 rejected" in result.output
    unknown = runner.invoke(app, [*args, "--as-topic", "nope", "--records"])
    assert unknown.exit_code == 1
    assert "no mapping" in unknown.output and "reads topic 'nope'" in unknown.output


def test_a_worker_refuses_to_start_on_a_broken_mapping(monkeypatch: Any) -> None:
    monkeypatch.setenv("CXMON_SOURCES_PATH", str(ROOT / "tests" / "unit" / "bad_sources"))
    monkeypatch.setenv("CXMON_RULES_PATH", str(RULES))
    monkeypatch.setenv("CXMON_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    for processes in ("1", "2"):  # one worker in this process, or a supervisor of several
        result = runner.invoke(app, ["run", "--processes", processes])
        assert result.exit_code == 1
        assert "broken.yaml:9:10: error[UNKNOWN_NAME] unknown name 'tiket'" in result.output
        assert "refusing to start" in result.output
    assert result.exit_code == 1
    assert "broken.yaml:9:10: error[UNKNOWN_NAME] unknown name 'tiket'" in result.output
    assert "refusing to start" in result.output
