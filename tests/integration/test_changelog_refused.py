"""Writes the broker refuses lose no alert: a refused changelog write stops the commit of the
input behind it, so the next worker reads the events again (issue 20, item 6); a refused
dead-letter write is counted and the valid events around it still alert (item 1)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from monitor.events import Event
from monitor.events.codec import encode
from tests.integration.faults import RefusingBroker
from tests.integration.harness import Deployment, publish, waiver_and_charge, waiver_rules

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


def _waivers_and_charges(customers: list[str]) -> tuple[list[Event], list[Event]]:
    """Each customer's fee waiver two hours ago, and the charge of that fee an hour later."""
    waived_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    pairs = [waiver_and_charge(customer, waived_at) for customer in customers]
    return [waiver for waiver, _ in pairs], [charge for _, charge in pairs]


@contextmanager
def _refusing(
    tmp_path: Path, refuses: Callable[[str], bool]
) -> Iterator[tuple[RefusingBroker, Deployment]]:
    """A deployment on an embedded broker of its own behind a proxy that refuses the writes to
    the topics `refuses` picks once `refusing` is set; both are stopped when the block ends."""
    with RefusingBroker(refuses, tmp_path / "broker.log") as rb:
        yield rb, Deployment(rb.bootstrap, tmp_path)


def _changelog(topic: str) -> bool:
    return topic.endswith("-changelog")


def _dead_letters(topic: str) -> bool:
    return topic.startswith("cx.events.dlq.")


def test_a_refused_changelog_write_leaves_its_input_uncommitted_and_loses_no_alert(
    tmp_path: Path,
) -> None:
    """The broker refuses the state changelog's writes (as Kafka refuses a record over the
    topic's `max.message.bytes`) while six waivers are handled: their offsets must not be
    committed, so a new worker reads them again, and the charges that follow all alert."""
    rules = waiver_rules(tmp_path)
    waivers, charges = _waivers_and_charges(CUSTOMERS)
    with _refusing(tmp_path, _changelog) as (rb, deployment):
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


def test_a_refused_dead_letter_write_loses_none_of_the_valid_events_around_it(
    tmp_path: Path,
) -> None:
    """The broker refuses the dead-letter topic while a record that is not JSON sits between
    waivers and charges on one partition: every charge still alerts, and the dead letter that
    was not written is counted (`cxmon_dead_letter_failures_total`) and logged."""
    rules = waiver_rules(tmp_path)
    customers = CUSTOMERS[:3]
    waivers, charges = _waivers_and_charges(customers)
    with _refusing(tmp_path, _dead_letters) as (rb, deployment), deployment.worker(rules) as worker:
        rb.refusing.set()
        producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, acks=1)
        try:
            topic = deployment.topics["events"]
            for one in waivers:
                producer.send(topic, value=encode(one), partition=0)
            producer.send(topic, value=b"not json at all", partition=0)
            for one in charges:
                producer.send(topic, value=encode(one), partition=0)
            producer.flush()
        finally:
            producer.close()
        alerts = deployment.alerts(expect=len(customers), timeout_s=30, quiet_s=1)
        deadline = time.monotonic() + 10
        while "could not be dead-lettered" not in worker.log():
            assert time.monotonic() < deadline, worker.log()[-3000:]
            time.sleep(0.1)
        metrics = worker.scrape()
    assert rb.refused >= 1
    assert sorted(a["key"] for a in alerts) == customers, worker.log()[-3000:]
    assert "cxmon_dead_letter_failures_total 1.0" in metrics, metrics
