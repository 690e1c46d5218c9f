"""Source mappings through real processes: a helpdesk's ticket JSON, payment webhooks and a
Debezium change stream, each on its own topic, raise exactly the alerts their CloudEvents raise;
records their mapping cannot read land in the dead-letter topic with the field that failed."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from monitor.events import Event
from monitor.events.mapping import RawRecord, evaluate
from monitor.sources import load_sources
from tests.integration.harness import ROOT, Deployment, publish

pytestmark = pytest.mark.integration
RULES = ROOT / "rules"
SHIPPED = {
    "helpdesk.tickets": "helpdesk.yaml",
    "payments.webhooks": "payments.yaml",
    "shop.public.orders": "orders-cdc.yaml",
}

Raw = tuple[str, bytes | None, bytes | None]  # shipped topic, key, value


def sources_for(deployment: Deployment, where: Path) -> dict[str, str]:
    """The shipped mappings with this test's topic names; shipped topic -> this test's."""
    where.mkdir()
    topics = {}
    for shipped, name in SHIPPED.items():
        topics[shipped] = f"{shipped}.{deployment.suffix}"
        text = (ROOT / "sources" / name).read_text()
        (where / name).write_text(text.replace(f"topic: {shipped}", f"topic: {topics[shipped]}"))
    return topics


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def raw_traffic(now: datetime) -> tuple[list[Raw], list[Raw], list[Event]]:
    """Good raw records (three conflicts among them, and two records to skip), malformed ones,
    and the CloudEvents of the other departments that the conflicts need."""
    t = now - timedelta(hours=3)
    ticket = {"ticket_id": "T-1", "requester": {"external_id": "cust-helpdesk"}}
    good: list[Raw] = [
        # support: the customer replied and the ticket was closed 5 minutes later, no answer
        (
            "helpdesk.tickets",
            b"T-1",
            _json(
                {
                    "event": "customer_replied",
                    "ticket": {**ticket, "status": "open", "updated_at": _stamp(t)},
                }
            ),
        ),
        (
            "helpdesk.tickets",
            b"T-1",
            _json(
                {
                    "event": "closed",
                    "ticket": {
                        **ticket,
                        "status": "closed",
                        "updated_at": _stamp(t + timedelta(minutes=5)),
                    },
                }
            ),
        ),
        ("helpdesk.tickets", b"T-1", _json({"event": "deleted", "ticket": ticket})),  # skipped
        # billing: a late fee charged after support promised to waive it
        (
            "payments.webhooks",
            b"cust-pay",
            _json(
                {
                    "id": "evt_1",
                    "object": "event",
                    "type": "charge.succeeded",
                    "created": int((t + timedelta(hours=1)).timestamp()),
                    "data": {
                        "object": {
                            "id": "ch_1",
                            "object": "charge",
                            "amount": 2500,
                            "currency": "eur",
                            "metadata": {"customer_id": "cust-pay", "fee_code": "late_fee"},
                        }
                    },
                }
            ),
        ),
        # fulfilment: the order row is inserted, shipped after the promised date, then deleted
        (
            "shop.public.orders",
            b'{"order_id": "O-1"}',
            _json(
                {
                    "before": None,
                    "after": {"order_id": "O-1", "customer_id": "cust-cdc", "status": "placed"},
                    "source": {"table": "orders"},
                    "op": "c",
                    "ts_ms": int((t - timedelta(hours=1)).timestamp() * 1000),
                }
            ),
        ),
        (
            "shop.public.orders",
            b'{"order_id": "O-1"}',
            _json(
                {
                    "before": {"order_id": "O-1", "customer_id": "cust-cdc", "status": "packed"},
                    "after": {"order_id": "O-1", "customer_id": "cust-cdc", "status": "shipped"},
                    "source": {"table": "orders"},
                    "op": "u",
                    "ts_ms": int((t + timedelta(hours=2)).timestamp() * 1000),
                }
            ),
        ),
        (
            "shop.public.orders",
            b'{"order_id": "O-1"}',
            _json(
                {
                    "before": {"order_id": "O-1", "customer_id": "cust-cdc", "status": "shipped"},
                    "after": None,
                    "source": {"table": "orders"},
                    "op": "d",
                    "ts_ms": int((t + timedelta(hours=2, minutes=1)).timestamp() * 1000),
                }
            ),
        ),
        ("shop.public.orders", b'{"order_id": "O-1"}', None),  # the tombstone: skipped
    ]
    malformed: list[Raw] = [
        ("helpdesk.tickets", b"T-2", b'{"event": "closed", '),
        (
            "payments.webhooks",
            b"x",
            _json(
                {
                    "id": "evt_2",
                    "type": "charge.succeeded",
                    "created": int(t.timestamp()),
                    "data": {
                        "object": {"id": "ch_2", "amount": 100, "currency": "eur", "metadata": {}}
                    },
                }
            ),
        ),
        (
            "shop.public.orders",
            b"x",
            _json(
                {
                    "before": None,
                    "after": {"order_id": "O-2", "customer_id": "c", "status": "placed"},
                    "source": {"table": "orders"},
                    "op": "c",
                    "ts_ms": "yesterday",
                }
            ),
        ),
    ]
    cloud = [
        Event(
            id="w1",
            source="support",
            type="fee.waiver_promised",
            time=t,
            subject="cust-pay",
            data={"fee_code": "late_fee"},
        ),
        Event(
            id="p1",
            source="sales",
            type="order.delivery_promised",
            time=t - timedelta(hours=1),
            subject="cust-cdc",
            data={"order_id": "O-1", "promised_by": _stamp(t)},
        ),
    ]
    return good, malformed, cloud


def send_raw(deployment: Deployment, topics: dict[str, str], records: list[Raw]) -> None:
    producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, acks=1)
    try:
        for shipped, key, value in records:
            producer.send(topics[shipped], key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def summary(alerts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            a["rule_id"],
            a["key"],
            a["status"],
            tuple((e["department"], e["type"]) for e in a["evidence"]),
        )
        for a in alerts
    )


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_raw_topics_raise_the_alerts_their_cloudevents_raise(broker: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    good, malformed, cloud = raw_traffic(now)

    raw_run = Deployment(broker.bootstrap, tmp_path)
    topics = sources_for(raw_run, tmp_path / "sources")
    sources = tmp_path / "sources"
    with raw_run.worker(
        RULES, CXMON_SOURCES_PATH=str(sources), CXMON_RELOAD_INTERVAL_S="0"
    ) as worker:
        publish(raw_run, *cloud)
        send_raw(raw_run, topics, good + malformed)
        raw_alerts = raw_run.alerts(expect=3, timeout_s=45)
        rejects = raw_run.read("dlq", expect=3, timeout_s=20)
        metrics = scrape(worker.metrics_port)
        # A broken edit to a mapping is a failed reload; the running mappings keep working.
        helpdesk = sources / "helpdesk.yaml"
        helpdesk.write_text(helpdesk.read_text().replace("ticket.updated_at", "tiket.updated_at"))
        worker.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        failed = 'cxmon_rule_reloads_total{outcome="failure"} 1.0'
        while failed not in scrape(worker.metrics_port):
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.2)
        # the first two tickets again, as another ticket of another customer
        later: list[Raw] = []
        for shipped, _, value in good[:2]:
            assert value is not None  # they are the ticket's records, not tombstones
            value = value.replace(b"cust-helpdesk", b"cust-after-reload")
            later.append((shipped, b"T-9", value.replace(b'"T-1"', b'"T-9"')))
        send_raw(raw_run, topics, later)
        after_reload = raw_run.alerts(expect=4, timeout_s=45)
        assert worker.process.poll() is None

    # The same events as CloudEvents on cx.events, to a worker with no mappings.
    mappings = load_sources([ROOT / "sources"]).mappings
    mapped = []
    for shipped, key, value in good:
        source = mappings.get(shipped)
        assert source is not None
        event = evaluate(source, RawRecord(shipped, value, key))
        if event is not None:  # the same event as a CloudEvent
            mapped.append(Event(**{f: getattr(event, f) for f in Event.model_fields}))
    assert len(mapped) == 6
    cloud_run = Deployment(broker.bootstrap, tmp_path)
    with cloud_run.worker(RULES, CXMON_SOURCES_PATH=str(tmp_path / "none")):
        publish(cloud_run, *cloud, *mapped)
        cloud_alerts = cloud_run.alerts(expect=3, timeout_s=45)

    assert summary(raw_alerts) == summary(cloud_alerts), worker.log()
    assert "rule reload (SIGHUP) rejected" in worker.log() and "tiket" in worker.log()
    assert sorted(
        a["key"] for a in after_reload if a["key"] not in {a2["key"] for a2 in raw_alerts}
    ) == ["cust-after-reload"]
    assert [(rule, key) for rule, key, _, _ in summary(raw_alerts)] == [
        ("billing-charges-waived-fee", "cust-pay"),
        ("shipped-after-promised-date", "cust-cdc"),
        ("ticket-closed-while-customer-replying", "cust-helpdesk"),
    ]
    # Malformed records: dead-lettered unchanged, with the reason and the field that failed.
    by_topic = {dict(r.headers)["cx_source_topic"].decode(): r for r in rejects}
    assert sorted(by_topic) == sorted(topics.values())
    fields = {}
    for shipped, key, value in malformed:
        record = by_topic[topics[shipped]]
        headers = dict(record.headers)
        assert (record.key, record.value) == (key, value)
        assert headers["cx_reject_reason"] == b"mapping_failed"
        fields[shipped] = headers["cx_mapping_field"].decode()
        assert headers["cx_reject_detail"]
    assert fields == {
        "helpdesk.tickets": "value",
        "payments.webhooks": "subject",
        "shop.public.orders": "time",
    }
    skipped = dict(re.findall(r'cxmon_mapping_skipped_total\{topic="([^"]+)"\} (\S+)', metrics))
    assert float(skipped[topics["helpdesk.tickets"]]) == 1.0
    assert float(skipped[topics["shop.public.orders"]]) == 1.0
    assert float(skipped[topics["payments.webhooks"]]) == 0.0
    failed = (
        f'cxmon_mapping_failures_total{{field="time",topic="{topics["shop.public.orders"]}"}} 1.0'
    )
    assert failed in metrics
    assert 'cxmon_events_consumed_total{department="billing",type="invoice.charged"} 1.0' in metrics
    assert (
        'cxmon_events_consumed_total{department="fulfilment",type="order.shipped"} 1.0' in metrics
    )
