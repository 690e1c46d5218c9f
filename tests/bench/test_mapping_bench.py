"""Mapped events: the cost of turning a raw record into an event through a shipped source
mapping, against decoding the CloudEvent of the same event (goal: at most 2x)."""

from __future__ import annotations

import gc
import json
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from monitor.events.codec import encode
from monitor.events.fast import decode_ref
from monitor.events.mapping import CompiledSource, RawRecord, evaluate
from monitor.sources import load_sources
from tests.bench.report import rate, write_section

SOURCES = Path(__file__).resolve().parents[2] / "sources"
RECORDS = 5_000
RUNS = 5
T0 = datetime(2026, 5, 4, 9, tzinfo=UTC)


def helpdesk(i: int) -> bytes:
    at = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    ticket = {
        "ticket_id": f"T-{i}",
        "status": "open",
        "subject": "Invoice question",
        "updated_at": at,
        "requester": {"external_id": f"cust-{i % 5000:05d}"},
    }
    return json.dumps({"event": "customer_replied", "ticket": ticket}).encode()


def webhook(i: int) -> bytes:
    charge = {
        "id": f"ch_{i}",
        "object": "charge",
        "amount": 2500,
        "currency": "eur",
        "metadata": {"customer_id": f"cust-{i % 5000:05d}", "fee_code": "late_fee"},
    }
    return json.dumps(
        {
            "id": f"evt_{i}",
            "object": "event",
            "type": "charge.succeeded",
            "created": int(T0.timestamp()) + i,
            "data": {"object": charge},
        }
    ).encode()


def cdc(i: int) -> bytes:
    row = {"order_id": f"O-{i}", "customer_id": f"cust-{i % 5000:05d}"}
    return json.dumps(
        {
            "before": {**row, "status": "packed"},
            "after": {**row, "status": "shipped"},
            "source": {"connector": "postgresql", "db": "shop", "table": "orders"},
            "op": "u",
            "ts_ms": int(T0.timestamp() * 1000) + i,
        }
    ).encode()


SHAPES: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "helpdesk ticket JSON": ("helpdesk.tickets", helpdesk),
    "payment webhook": ("payments.webhooks", webhook),
    "Debezium CDC envelope": ("shop.public.orders", cdc),
}


def measure(
    source: CompiledSource, topic: str, raw: list[bytes]
) -> tuple[float, float, float, float]:
    """Records/s through the mapping and CloudEvents/s through the decoder, for the same events."""
    records = [RawRecord(topic, value, b"k") for value in raw]
    events = [evaluate(source, r) for r in records]
    cloud = [
        encode(
            Event(
                id=e.id, source=e.source, type=e.type, time=e.time, subject=e.subject, data=e.data
            )
        )
        for e in events
        if e is not None
    ]
    assert len(cloud) == len(records)

    def mapped() -> None:
        for record in records:
            evaluate(source, record)

    def decoded() -> None:
        for value in cloud:
            decode_ref(value)

    gc.collect()
    gc.freeze()
    try:
        return (
            rate(len(records), mapped),
            rate(len(cloud), decoded),
            statistics.mean(map(len, raw)),
            statistics.mean(map(len, cloud)),
        )
    finally:
        gc.unfreeze()


@pytest.mark.timeout(900)
def test_mapped_record_cost_against_a_cloudevent_decode() -> None:
    mappings = load_sources([SOURCES]).mappings
    rows = []
    worst = 0.0
    for name, (topic, make) in SHAPES.items():
        source = mappings.get(topic)
        assert source is not None
        raw = [make(i) for i in range(RECORDS)]
        runs = [measure(source, topic, raw) for _ in range(RUNS)]  # alternating, same noise
        mapped = statistics.median(r[0] for r in runs)
        decoded = statistics.median(r[1] for r in runs)
        ratio = decoded / mapped  # cost of a mapped record / cost of a decode
        worst = max(worst, ratio)
        rows.append(
            f"| {name} ({topic}) | {runs[0][2]:.0f} / {runs[0][3]:.0f} | {mapped:,.0f} "
            f"| {decoded:,.0f} | **{ratio:.2f}x** |"
        )
    write_section(
        "Mapped events: a source mapping vs decoding the CloudEvent",
        f"""
{RECORDS:,} raw records per shape through the shipped mapping (`monitor.events.mapping.evaluate`:
parse, every field, checks, the `EventRef`) against `decode_ref` (the worker's decoder) of the CloudEvent each
becomes; one core, median of {RUNS} alternating runs. Goal: a mapped record costs at most 2x
the decode (each field compiled once at load; paths and the common shapes of expression run
in Python, the rest in CEL over only the paths they read; `monitor/sources/shortcuts.py`).

| shape | bytes raw / CloudEvent | mapped records/s | CloudEvents decoded/s | cost ratio |
|---|---|---|---|---|
{chr(10).join(rows)}

Worst ratio: **{worst:.2f}x** (goal ≤ 2x).
""",
        "make bench",
    )
    assert worst > 0
