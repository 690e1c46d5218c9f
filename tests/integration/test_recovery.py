"""State survives: deadlines fire after a restart, and after a crash in a group of two workers."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, publish, read_until, waiver_and_charge

pytestmark = pytest.mark.integration
STORES = pytest.mark.parametrize("store", ["memory://", "rocksdb://"])

SHORT_SLA = """version: 1
rules:
  - id: quick-handoff-stalled
    title: A handoff with a short SLA was not picked up
    kind: stalled
    owners: [sales, onboarding]
    first: {source: sales, type: deal.closed}
    then:  {source: onboarding, type: kickoff.held, where: "then.data.deal_id == first.data.deal_id"}
    within: SLA
"""


def _rules(tmp_path: Path, sla: str) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "quick.yaml").write_text(SHORT_SLA.replace("SLA", sla))
    return rules


def _deal(customer: str, at: datetime, deal: str = "D-1") -> Event:
    return Event(
        id=f"deal-{customer}-{deal}",
        source="sales",
        type="deal.closed",
        time=at,
        subject=customer,
        data={"deal_id": deal},
    )


@STORES
def test_deadlines_that_pass_while_the_worker_is_down_fire_when_it_returns(
    deployment: Deployment, tmp_path: Path, store: str
) -> None:
    rules = _rules(tmp_path, "12s")
    customers = [f"restart-{i}" for i in range(6)]
    with deployment.worker(rules, CXMON_STORE=store) as first:
        now = datetime.now(UTC)  # after the worker is ready: a slow start must not eat the SLA
        publish(deployment, *[_deal(c, now) for c in customers])
        # the deals are in the state table (their expectations are open) before we stop
        assert deployment.alerts(expect=0, timeout_s=4, quiet_s=2) == []
    # nothing fired before the stop (it prints each alert): the deadlines pass while it is down
    assert "[FIRING]" not in first.log(), first.log()
    due = now + timedelta(seconds=12)
    while datetime.now(UTC) < due + timedelta(seconds=1):  # let the deadlines pass while down
        time.sleep(0.5)
    with deployment.worker(rules, CXMON_STORE=store) as worker:
        alerts = deployment.alerts(expect=len(customers), timeout_s=40)
    assert sorted(a["key"] for a in alerts) == customers, worker.log()
    assert {a["status"] for a in alerts} == {"firing"}


@STORES
def test_a_killed_worker_loses_no_deadline_and_no_alert_is_duplicated(
    deployment: Deployment, tmp_path: Path, store: str
) -> None:
    rules = _rules(tmp_path, "15s")
    customers = [f"crash-{i:02d}" for i in range(24)]
    with (
        deployment.worker(rules, wait=False, CXMON_STORE=store) as first,
        deployment.worker(rules, wait=False, CXMON_STORE=store) as second,
    ):
        first.wait_ready()  # both start at once: one start-up's wait instead of two
        second.wait_ready()
        now = datetime.now(UTC)  # after both are ready: a slow start must not eat the SLA
        publish(deployment, *[_deal(c, now) for c in customers])
        assert deployment.alerts(expect=0, timeout_s=3, quiet_s=2) == []
        first.stop(signal.SIGKILL)  # the survivor takes over its partitions and state
        alerts = deployment.alerts(expect=len(customers), timeout_s=60, quiet_s=5)
    fingerprints = [a["fingerprint"] for a in alerts]
    assert sorted(a["key"] for a in alerts) == customers
    assert len(set(fingerprints)) == len(fingerprints)


def test_worker_recovers_by_itself_after_the_broker_froze_for_20s(tmp_path: Path) -> None:
    from streams.broker import EmbeddedBroker

    rules = Path(__file__).resolve().parents[2] / "rules"
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        deployment = Deployment(broker.bootstrap, tmp_path)
        waived_at, minute = datetime.now(UTC) - timedelta(minutes=3), timedelta(minutes=1)
        with deployment.worker(rules) as worker:
            publish(deployment, *waiver_and_charge("before-freeze", waived_at, after=minute))
            assert len(deployment.alerts(expect=1, quiet_s=0.5)) == 1
            broker.pause()
            try:
                frozen_until = time.monotonic() + 20
                while time.monotonic() < frozen_until:  # the freeze itself is the test input
                    assert worker.process.poll() is None, worker.log()
                    time.sleep(0.5)
            finally:
                broker.resume()
            publish(deployment, *waiver_and_charge("after-freeze", waived_at, after=minute))
            alerts = deployment.alerts(expect=2, timeout_s=90)
        assert sorted(a["key"] for a in alerts) == ["after-freeze", "before-freeze"], worker.log()


def _changelog(deployment: Deployment, *, until: int) -> list[Any]:
    """The state changelog's records, read until a state records `until` open expectations."""
    topic = f"cxmon-test-{deployment.suffix}-cx-state-changelog"

    def holds_all(records: list[Any]) -> bool:
        return any(r.value and json.loads(r.value)["o"] == until for r in records)

    records = read_until(deployment.bootstrap, topic, holds_all, timeout_s=30)
    assert holds_all(records), f"{len(records)} records, none with {until} open"
    return records


def test_a_batch_writes_each_state_it_changed_once_to_the_changelog(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, "1h")
    now = datetime.now(UTC)
    deals = [_deal("busy-customer", now + timedelta(seconds=n), f"D-{n}") for n in range(60)]
    with deployment.worker(rules) as worker:
        publish(deployment, *deals)  # one request: the worker takes them in one or a few batches
        records = _changelog(deployment, until=len(deals))
    # Faust alone would write one record per change: 60 for the one customer's state
    assert 1 <= len(records) < len(deals) // 2, worker.log()
    # keys as Faust writes them (JSON strings), so a restart recovers them as before
    assert {json.loads(r.key) for r in records} == {"quick-handoff-stalled\x1fbusy-customer"}
    last = json.loads(records[-1].value)
    assert (last["o"], last["b"], len(last["s"]["seen"])) == (60, 0, 60)
