"""Each hardening limit refuses with a clear, positioned error (rule files) or a reject reason
(events), and a customer's state cannot grow past its cap."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.engine import Ruleset
from monitor.engine.state import KeyState
from monitor.errors import IssueCode
from monitor.events import Rejected, RejectReason
from monitor.events.codec import check_time_range, data_depth, decode
from monitor.rules import RuleLimits, load_rules
from tests.unit.conftest import DAY, T0, event

RULE = """\
  - id: rule-{n}
    title: Rule {n}
    kind: burst
    match: {{source: support, type: call.made}}
    threshold: 3
    within: 1d
"""


def write_rules(folder: Path, count: int, name: str = "many.yaml") -> Path:
    path = folder / name
    path.write_text("version: 1\nrules:\n" + "".join(RULE.format(n=n) for n in range(count)))
    return path


def record(data: object) -> bytes:
    body: dict[str, object] = {"specversion": "1.0", "id": "1", "source": "billing", "type": "t"}
    body |= {"time": "2026-05-01T09:00:00Z", "subject": "c1", "data": data}
    return json.dumps(body).encode()


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_rule_file_over_the_size_limit_is_refused_at_line_1(tmp_path: Path) -> None:
    path = write_rules(tmp_path, 5)
    result = load_rules([path], RuleLimits(max_file_bytes=200))
    [issue] = result.issues
    assert (issue.code, issue.location.line, issue.location.col) == (
        IssueCode.RULE_FILE_TOO_LARGE,
        1,
        1,
    )
    assert "limit 200" in issue.message and "max_rule_file_bytes" in (issue.hint or "")
    assert result.rules == []


def test_too_many_rules_names_the_first_rule_over_the_limit(tmp_path: Path) -> None:
    write_rules(tmp_path, 4)
    result = load_rules([tmp_path], RuleLimits(max_rules=3))
    [issue] = result.errors
    assert issue.code == IssueCode.TOO_MANY_RULES
    assert issue.rule_id == "rule-3"
    assert issue.location.line == 3 + 6 * 3  # the fourth rule's `- id:` line
    assert "max_rules" in (issue.hint or "")
    assert result.rules == []


def test_rules_within_the_limits_load(tmp_path: Path) -> None:
    write_rules(tmp_path, 3)
    assert len(load_rules([tmp_path], RuleLimits(max_rules=3)).rules) == 3


def test_data_deeper_than_the_limit_is_rejected_as_too_deep() -> None:
    assert decode(record(nested(4)), max_depth=4).data == nested(4)
    with pytest.raises(Rejected) as caught:
        decode(record(nested(5)), max_depth=4)
    assert caught.value.reason == RejectReason.TOO_DEEP
    assert "max_data_depth" in caught.value.detail


def test_json_too_deep_to_parse_is_too_deep_not_a_crash() -> None:
    body = record(None).replace(b'"data": null', b'"data": {"a": ' + b"[" * 100_000 + b"]}")
    with pytest.raises(Rejected) as caught:
        decode(body, max_bytes=10**6)
    assert caught.value.reason == RejectReason.TOO_DEEP


def test_data_depth_counts_objects_and_arrays() -> None:
    values: list[object] = [1, {}, {"a": [1]}, {"a": [{"b": {}}]}]
    assert [data_depth(v) for v in values] == [0, 1, 2, 4]


@pytest.mark.parametrize("offset", [timedelta(days=2), -timedelta(days=400)])
def test_event_times_far_from_the_clock_are_out_of_range(offset: timedelta) -> None:
    with pytest.raises(Rejected) as caught:
        check_time_range(event("billing", "t", at=T0 + offset), T0, timedelta(days=366), DAY)
    assert caught.value.reason == RejectReason.TIME_OUT_OF_RANGE


@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_times_that_overflow_are_bad_time(time: str) -> None:
    body = json.loads(record({}))
    body["time"] = time
    with pytest.raises(Rejected) as caught:
        decode(json.dumps(body).encode())
    assert caught.value.reason == RejectReason.BAD_TIME


def test_state_over_the_cap_evicts_the_oldest_and_counts_them() -> None:
    state = KeyState()
    ruleset = Ruleset(load_rules([Path(__file__).parents[3] / "rules"]).rules, max_state_entries=10)
    rule = next(r for r in ruleset.rules.values() if r.kind == "burst")
    match = rule.form.match  # the burst kind's compiled form
    [type_name] = sorted(match.types)[:1]
    source = sorted(match.sources or {"support"})[0]
    for n in range(25):
        ref = event(source, type_name, at=T0 + timedelta(minutes=n), id=f"e{n}").ref()
        ruleset.step(rule, "c1", state, ref, T0)
    assert len(state.seen) == 10 and len(state.held) <= 10
    assert sorted(state.seen.values())[0] == T0 + timedelta(minutes=15)  # the oldest went
    assert ruleset.evictions[rule.id] >= 15
