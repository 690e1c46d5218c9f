"""10,000 hostile records through a real worker: it stays up, dead-letters each one with a reason,
counts exactly as many, and the valid events between them still raise exactly their alerts."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from monitor.events import Event
from monitor.events.codec import encode
from tests.integration.harness import (
    CHARGED_MESSAGE,
    Deployment,
    WorkerProcess,
    waiver_and_charge,
    waiver_rules,
)
from tests.integration.malformed import generate

pytestmark = pytest.mark.integration

MALFORMED = 10_000
CUSTOMERS = 20
MAX_BYTES = 4096
MAX_DEPTH = 32


def valid_events(now: datetime) -> tuple[list[Event], list[Event]]:
    """A waiver then a charge of the same fee for each customer: one alert each."""
    pairs = [
        waiver_and_charge(f"valid-{n:02d}", now - timedelta(hours=2) + timedelta(seconds=n))
        for n in range(CUSTOMERS)
    ]
    return [waiver for waiver, _ in pairs], [charge for _, charge in pairs]


def scrape_rejected(worker: WorkerProcess) -> dict[str, float]:
    text = worker.scrape()
    found = re.findall(r'^cxmon_events_rejected_total\{reason="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    return {reason: float(value) for reason, value in found}


def test_malformed_records_are_all_dead_lettered_and_valid_ones_still_alert(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = waiver_rules(tmp_path, CHARGED_MESSAGE)
    records = list(generate(MALFORMED, seed=20260501, max_bytes=MAX_BYTES, max_depth=MAX_DEPTH))
    waivers, charges = valid_events(datetime.now(UTC).replace(microsecond=0))
    # valid events spread through the stream, in event-time order (waivers before charges)
    valid = [(encode(e), e.subject.encode()) for e in waivers + charges]
    every = MALFORMED // len(valid)
    with deployment.worker(
        rules,
        CXMON_MAX_EVENT_BYTES=str(MAX_BYTES),
        CXMON_MAX_DATA_DEPTH=str(MAX_DEPTH),
        CXMON_CONSOLE_ALERTS="false",
        CXMON_LOG_LEVEL="error",  # one warning per reject would be 10,000 log lines
    ) as worker:
        topic = deployment.topics["events"]
        producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, linger_ms=5)
        try:
            for n, (value, headers, _) in enumerate(records):
                producer.send(topic, value=value, headers=headers)
                if n % every == every - 1 and valid:
                    body, key = valid.pop(0)
                    producer.send(topic, value=body, key=key)
                if n % 1000 == 999:
                    producer.flush()  # in batches
            for body, key in valid:
                producer.send(topic, value=body, key=key)
            producer.flush()
        finally:
            producer.close()
        dead = deployment.read("dlq", expect=MALFORMED, timeout_s=60, quiet_s=2)
        alerts = deployment.alerts(expect=CUSTOMERS, timeout_s=20, quiet_s=2)
        deadline = time.monotonic() + 15
        counted = scrape_rejected(worker)
        while sum(counted.values()) < MALFORMED and time.monotonic() < deadline:
            time.sleep(0.2)
            counted = scrape_rejected(worker)
        assert worker.process.poll() is None, worker.log()  # still running

    sent = Counter(value for value, _, _ in records)
    assert Counter(r.value for r in dead) == sent  # each malformed record, once
    allowed: dict[bytes, set[str]] = {}
    for value, _, possible in records:
        allowed.setdefault(value, set()).update(possible)
    reasons: Counter[str] = Counter()
    for record in dead:
        reason = dict(record.headers)["cx_reject_reason"].decode()
        assert reason in allowed[record.value], (record.value[:80], reason)
        assert dict(record.headers)["cx_reject_detail"]
        reasons[reason] += 1
    assert reasons["internal_error"] == 0
    assert {k: v for k, v in counted.items() if v} == {k: float(v) for k, v in reasons.items()}
    assert sum(counted.values()) == MALFORMED
    assert sorted((a["rule_id"], a["key"], a["status"]) for a in alerts) == [
        ("waived-fee-charged", f"valid-{n:02d}", "firing") for n in range(CUSTOMERS)
    ]
