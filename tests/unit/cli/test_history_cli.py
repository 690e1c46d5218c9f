"""The pieces of `replay --topic` and `export` that need no broker: times, lines, progress, and
the replay summary's counts."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from rich.console import Console

from cli.history import cloudevent_line, parse_moment, progress
from monitor.authoring.replay import replay
from monitor.engine.ruleset import Ruleset
from monitor.events import Event
from monitor.events.codec import encode, encode_binary
from monitor.rules import load_rules
from tests.unit.conftest import RULES_DIR

NOW = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)
EVENT = Event(
    id="w1",
    source="support",
    type="fee.waiver_promised",
    time=NOW,
    subject="c1",
    data={"fee_code": "late_fee"},
)


def test_since_is_a_duration_back_or_a_time_with_an_offset() -> None:
    assert parse_moment("7d", "--since", NOW) == NOW - timedelta(days=7)
    assert parse_moment("2026-05-01T00:00:00Z", "--since", NOW) == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="UTC offset"):
        parse_moment("2026-05-01T00:00:00", "--since", NOW)
    with pytest.raises(typer.BadParameter, match="7d, 12h"):
        parse_moment("last week", "--since", NOW)


def test_binary_mode_records_become_structured_lines() -> None:
    headers, value = encode_binary(EVENT)
    line = json.loads(cloudevent_line(value, headers))
    assert (line["id"], line["type"], line["subject"]) == ("w1", "fee.waiver_promised", "c1")
    assert cloudevent_line(encode(EVENT), []) == encode(EVENT)


def test_progress_bar_only_on_a_terminal() -> None:
    shown = io.StringIO()
    terminal = Console(file=shown, force_terminal=True, width=80)
    assert list(progress(range(1000), terminal, "events.jsonl", 1000)) == list(range(1000))
    assert "events.jsonl" in shown.getvalue()
    piped = io.StringIO()
    assert list(progress(range(10), Console(file=piped), "x", 10)) == list(range(10))
    assert piped.getvalue() == ""


def _line(event: Event) -> bytes:
    return encode(event)


def test_summary_counts_duplicates_out_of_order_rejects_and_pending_deadlines() -> None:
    promise = EVENT.model_copy(
        update={"id": "r1", "type": "refund.promised", "data": {"case_id": "k1", "amount": 5}}
    )
    charge = EVENT.model_copy(
        update={
            "id": "b1",
            "source": "billing",
            "type": "invoice.charged",
            "time": NOW + timedelta(minutes=5),
            "data": {"fee_code": "late_fee", "amount": 10},
        }
    )
    earlier = charge.model_copy(update={"id": "b0", "time": NOW + timedelta(minutes=2)})
    lines = [_line(promise), _line(EVENT), _line(EVENT), _line(charge), _line(earlier), b"{"]
    rules = load_rules([RULES_DIR]).rules
    result = replay(lines, Ruleset(rules), timedelta(minutes=5))
    assert (result.duplicates, result.out_of_order) == (1, 1)
    assert result.rejects_by_reason == {"bad_json": 1}
    assert result.pending == {"refund-promised-not-issued": 1}
    assert result.next_due["refund-promised-not-issued"] == NOW + timedelta(days=5)
