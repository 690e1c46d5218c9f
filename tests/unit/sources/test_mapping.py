"""Evaluating a compiled mapping on raw records: events, skips and rejections naming the field."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.events import RejectReason
from monitor.events.mapping import CompiledSource, MappingFailed, RawRecord, evaluate, to_time
from monitor.sources import load_sources

TOPIC = "raw.things"
BASE = {
    "id": "value.id",
    "type": "'thing.' + value.what",
    "time": "value.at",
    "subject": "value.customer",
}


def compile_one(tmp_path: Path, **fields: str) -> CompiledSource:
    entry = {"topic": TOPIC, "department": "support", **BASE, **fields}
    body = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in entry.items())
    path = tmp_path / "m.yaml"
    path.write_text(f"version: 1\nsources:\n  -{body[3:]}\n")
    loaded = load_sources([path])
    assert not loaded.errors, loaded.errors
    source = loaded.mappings.get(TOPIC)
    assert source is not None
    return source


def record(value: Any, **extra: Any) -> RawRecord:
    return RawRecord(TOPIC, json.dumps(value).encode(), **extra)


GOOD = {"id": "x1", "what": "opened", "at": "2026-05-01T09:00:00Z", "customer": "c1", "n": 3}


def test_fields_become_the_event_and_data_defaults_to_the_value(tmp_path: Path) -> None:
    event = evaluate(compile_one(tmp_path), record(GOOD))
    assert event is not None
    assert (event.id, event.source, event.type, event.subject) == (
        "x1",
        "support",
        "thing.opened",
        "c1",
    )
    assert event.time == datetime(2026, 5, 1, 9, tzinfo=UTC)
    assert event.data == GOOD
    assert event.department == "support"


def test_when_false_skips_and_a_non_boolean_when_fails(tmp_path: Path) -> None:
    source = compile_one(tmp_path, when="value.what != 'deleted'")
    assert evaluate(source, record({**GOOD, "what": "deleted"})) is None
    wrong = compile_one(tmp_path, when="value.what")
    with pytest.raises(MappingFailed) as failed:
        evaluate(wrong, record(GOOD))
    assert failed.value.field == "when"
    assert failed.value.reason == RejectReason.MAPPING_FAILED


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("2026-05-01T11:00:00+02:00", "s", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        (1777626000, "s", datetime(2026, 5, 1, 9, tzinfo=UTC)),
        (1777626000500, "ms", datetime(2026, 5, 1, 9, 0, 0, 500000, tzinfo=UTC)),
        (1777626000000001, "us", datetime(2026, 5, 1, 9, 0, 0, 1, tzinfo=UTC)),
        (datetime(2026, 5, 1, 9, tzinfo=UTC), "s", datetime(2026, 5, 1, 9, tzinfo=UTC)),
    ],
)
def test_time_reads_text_numbers_in_their_unit_and_timestamps(
    value: Any, unit: str, expected: datetime
) -> None:
    assert to_time(value, unit) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-05-01T09:00:00", True, None, [1], 1e30])
def test_time_that_is_not_a_time_fails_naming_time(value: Any) -> None:
    with pytest.raises(MappingFailed) as failed:
        to_time(value)
    assert failed.value.field == "time"


def test_cel_time_and_kafka_scope(tmp_path: Path) -> None:
    source = compile_one(
        tmp_path,
        time="timestamp",
        subject="headers['customer']",
        id="key + ':' + string(offset) + ':' + topic + ':' + string(partition)",
    )
    stamp = datetime(2026, 5, 2, tzinfo=UTC)
    raw = record(
        GOOD, key=b"k1", headers=(("customer", b"c9"),), offset=7, partition=2, timestamp=stamp
    )
    event = evaluate(source, raw)
    assert event is not None
    assert (event.id, event.subject, event.time) == (f"k1:7:{TOPIC}:2", "c9", stamp)


@pytest.mark.parametrize(
    ("fields", "value", "field", "error"),
    [
        ({}, {**GOOD, "customer": 42}, "subject", "must be a string, got a number"),
        ({}, {**GOOD, "id": ""}, "id", "is empty"),
        ({}, {k: v for k, v in GOOD.items() if k != "customer"}, "subject", "no key 'customer'"),
        ({"data": "value.n"}, GOOD, "data", "must be a map"),
        ({"type": "value.what + 1"}, GOOD, "type", "string + int"),
        ({"type": "value.missing + 'x'"}, GOOD, "type", "no such key 'missing'"),
        ({"source": "'billing'"}, GOOD, "source", "not in department 'support'"),
    ],
)
def test_a_field_that_fails_names_itself(
    tmp_path: Path, fields: dict[str, str], value: Any, field: str, error: str
) -> None:
    with pytest.raises(MappingFailed) as failed:
        evaluate(compile_one(tmp_path, **fields), record(value))
    assert (failed.value.field, error in failed.value.error) == (field, True), failed.value.error


def test_bad_json_fails_on_value_and_a_tombstone_is_null(tmp_path: Path) -> None:
    source = compile_one(tmp_path, when="value != null")
    with pytest.raises(MappingFailed) as failed:
        evaluate(source, RawRecord(TOPIC, b'{"id": '))
    assert failed.value.field == "value"
    assert evaluate(source, RawRecord(TOPIC, None)) is None


def test_limits_on_size_and_data_depth(tmp_path: Path) -> None:
    source = compile_one(tmp_path, data="value.deep")
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(MappingFailed) as failed:
        evaluate(source, record({**GOOD, "deep": deep}), max_depth=32)
    assert failed.value.field == "data"
    with pytest.raises(MappingFailed) as wide:
        evaluate(source, record({**GOOD, "deep": {"items": list(range(20))}}), max_items=10)
    assert (wide.value.field, "max_data_items" in wide.value.error) == ("data", True)
    with pytest.raises(MappingFailed) as long_id:
        evaluate(source, record({**GOOD, "id": "x" * 300, "deep": {}}), max_attribute_chars=256)
    assert long_id.value.field == "id"
    with pytest.raises(Exception) as large:
        evaluate(source, record(GOOD), max_bytes=10)
    assert getattr(large.value, "reason", None) == RejectReason.TOO_LARGE


def test_lists_and_macros_are_in_scope_and_macro_paths_stay_plain(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            lists:
              kept: [opened, closed]
            macros:
              thing: "value"
              named: "'thing.' + thing.what"
            sources:
              - topic: raw.things
                department: support
                when: "thing.what in kept"
                id: "thing.id"
                type: "named"
                time: "thing.at"
                subject: "thing.customer"
            """
        )
    )
    loaded = load_sources([path])
    assert not loaded.issues
    source = loaded.mappings.get(TOPIC)
    assert source is not None
    assert source.time.path == ("value", "at")  # read without CEL
    assert source.type.path is None
    event = evaluate(source, record(GOOD))
    assert event is not None and event.type == "thing.opened"
    assert evaluate(source, record({**GOOD, "what": "moved"})) is None


def _unoptimised(source: CompiledSource) -> CompiledSource:
    """The same mapping with every field evaluated by its whole CEL program."""
    fields = {}
    for name in ("id", "type", "time", "subject", "source", "when", "data"):
        compiled = getattr(source, name)
        if compiled is not None:
            fields[name] = dataclasses.replace(compiled, path=None, flat=None, choice=None)
    return dataclasses.replace(source, **fields)


def test_paths_flat_programs_and_choices_give_what_the_whole_program_gives() -> None:
    from monitor.simulator import RAW_FORMS, Simulator

    mappings = load_sources([Path(__file__).resolve().parents[3] / "sources"]).mappings
    end = datetime(2026, 5, 10, tzinfo=UTC)
    events = Simulator(seed=5, conflict_share=0.5).backfill(end - timedelta(days=3), end, 200)
    raws = [r for e in events for form in RAW_FORMS.values() if (r := form(e)) is not None]
    deleted = b'{"before": {"order_id": "O-9", "customer_id": "c9", "status": "x"}, "after": null,'
    raws += [
        (
            "shop.public.orders",
            b"k",
            deleted + b' "source": {"table": "orders"}, "op": "d", "ts_ms": 5}',
        ),
        (
            "shop.public.orders",
            b"k",
            b'{"before": null, "after": {"order_id": "O-8"}, "op": "u", "source": {"table": "orders"}, "ts_ms": 5}',
        ),
        (
            "payments.webhooks",
            b"k",
            b'{"id": "e", "type": "charge.succeeded", "created": 1, "data": {"object": {"id": 7, "amount": 1, "currency": "eur", "metadata": {"customer_id": "c"}}}}',
        ),
    ]
    tickets = [
        {
            "event": "closed",
            "ticket": {
                "ticket_id": 4711,
                "updated_at": "2026-05-01T09:00:00Z",
                "requester": {"external_id": "c1"},
            },
        },
        {"event": 3, "ticket": {"ticket_id": "T", "updated_at": "x", "requester": {}}},
        {"ticket": {"ticket_id": "T"}},
        {"event": "opened", "ticket": None},
        [1, 2],
    ]
    raws += [("helpdesk.tickets", b"k", json.dumps(t).encode()) for t in tickets]
    raws += [("payments.webhooks", b"k", json.dumps({"id": "e", "type": 5}).encode())]
    assert len(raws) > 20
    for topic, key, value in raws:
        source = mappings.get(topic)
        assert source is not None
        record = RawRecord(topic, value, key)
        outcomes: list[tuple[str, object]] = []  # an event, or the failed field and error
        for candidate in (source, _unoptimised(source)):
            try:
                outcomes.append(("event", evaluate(candidate, record)))
            except MappingFailed as failed:
                outcomes.append(("failed", (failed.field, failed.error)))
        assert outcomes[0] == outcomes[1], (topic, value)
