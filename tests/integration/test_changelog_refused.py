"""A changelog write the broker refuses stops the commit of the input behind it: the events are
read again by the next worker and no alert is lost (issue 20, item 6)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from monitor.events import Event
from tests.integration.faults import RefusingBroker
from tests.integration.harness import Deployment, publish, waiver_rules

pytestmark = pytest.mark.integration
CUSTOMERS = [f"refused-{n}" for n in range(6)]


def _committed(deployment: Deployment) -> int:
    """Input records of the events topic below the worker group's committed offsets."""
    group = f"cxmon-test-{deployment.suffix}"
    admin = KafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    topic = deployment.topics["events"]
    return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)


def test_a_refused_changelog_write_leaves_its_input_uncommitted_and_loses_no_alert(
    tmp_path: Path,
) -> None:
    """The broker refuses the state changelog's writes (as Kafka refuses a record over the
    topic's `max.message.bytes`) while six waivers are handled: their offsets must not be
    committed, so a new worker reads them again, and the charges that follow all alert."""
    rules = waiver_rules(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    waivers = [
        Event(
            id=f"w-{customer}",
            source="support",
            type="fee.waiver_promised",
            time=now - timedelta(hours=2),
            subject=customer,
            data={"fee_code": "late_fee"},
        )
        for customer in CUSTOMERS
    ]
    charges = [
        Event(
            id=f"c-{customer}",
            source="billing",
            type="invoice.charged",
            time=now - timedelta(hours=1),
            subject=customer,
            data={"fee_code": "late_fee", "amount": 25},
        )
        for customer in CUSTOMERS
    ]
    with RefusingBroker(lambda topic: topic.endswith("-changelog"), tmp_path / "broker.log") as rb:
        deployment = Deployment(rb.bootstrap, tmp_path)
        with deployment.worker(rules) as worker:
            rb.refusing.set()
            publish(deployment, *waivers)
            # The worker handles the waivers (their states go to the changelog and are
            # refused); then, for many commit intervals or until the worker gave up, nothing
            # of them may be committed.
            deadline = time.monotonic() + 30
            while not rb.refused and time.monotonic() < deadline:
                time.sleep(0.1)
            assert rb.refused, worker.log()[-3000:]
            watch_until = time.monotonic() + 6  # the fast-start profile commits every 0.2 s
            committed = 0
            while not committed and time.monotonic() < watch_until:
                stopped = worker.process.poll() is not None
                committed = _committed(deployment)
                if stopped:
                    break
                time.sleep(0.2)
            assert committed == 0, (committed, worker.log()[-3000:])
        rb.refusing.clear()
        # the next worker rebuilds no state for them from the changelog: only reading the
        # waivers again lets the charges meet them
        with deployment.worker(rules) as worker:
            publish(deployment, *charges)
            alerts = deployment.alerts(expect=len(CUSTOMERS), timeout_s=40, quiet_s=1)
        keys = sorted(a["key"] for a in alerts if a["rule_id"] == "waived-fee-charged")
        assert keys == CUSTOMERS, (keys, worker.log()[-3000:])
