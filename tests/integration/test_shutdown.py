"""SIGTERM: the worker stops by itself, with every alert written and every offset committed."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tests.integration.harness import Deployment, publish, waiver_and_charge

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def _committed(deployment: Deployment, topic: str) -> int:
    group = f"cxmon-test-{deployment.suffix}"
    admin = KafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
        return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic)
    finally:
        admin.close()


def test_sigterm_commits_offsets_and_flushes_alerts(deployment: Deployment) -> None:
    now = datetime.now(UTC) - timedelta(minutes=2)
    customers = [f"term-{i}" for i in range(12)]
    events = [e for c in customers for e in waiver_and_charge(c, now, after=timedelta(minutes=1))]
    with deployment.worker(RULES) as worker:
        publish(deployment, *events)
        alerts = deployment.alerts(expect=len(customers), timeout_s=30, quiet_s=1)
        assert sorted(a["key"] for a in alerts) == sorted(customers)
        worker.stop(signal.SIGTERM, timeout_s=20)
        log = worker.log()
        assert worker.process.returncode == 0, f"worker did not stop cleanly:\n{log}"
    # Every input record is committed, so a new worker in the group starts after them.
    assert _committed(deployment, deployment.topics["events"]) == len(events), log
    with deployment.worker(RULES):
        again = deployment.alerts(expect=len(customers), timeout_s=10, quiet_s=4)
    assert len(again) == len(customers), "a restarted worker re-processed committed events"
