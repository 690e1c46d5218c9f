"""A deadline that passed during an outage, with its follow-up waiting in the backlog."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, WorkerProcess, publish

pytestmark = pytest.mark.integration

WITHIN_S = 8
RULE = f"""\
version: 1
rules:
  - id: waiver-not-credited
    title: Billing did not credit a promised waiver
    kind: stalled
    severity: low
    owners: [support, billing]
    first: {{source: support, type: fee.waiver_promised}}
    then: {{source: billing, type: credit.issued}}
    within: {WITHIN_S}s
"""
FILLERS = 20_000  # several fetches' worth ahead of the follow-up, with ticks between them


def event(kind: str, customer: str, at: datetime, n: int = 0) -> Event:
    source, type_ = kind.split(":")
    return Event(id=f"{type_}-{customer}-{n}", source=source, type=type_, time=at, subject=customer)


def test_a_follow_up_down_the_backlog_meets_its_deadline(deployment: Deployment) -> None:
    """Both customers were promised a waiver just before the worker stopped; billing credited
    `cust-kept` a few seconds later, during the outage, behind thousands of other events on the
    same partition. When the worker comes back, both deadlines have passed by the wall clock.
    A tick that breached by the wall clock raised `cust-kept`'s before its credit was read (and
    the credit then resolved it as late); held back by the backlog's event time, only
    `cust-forgotten`, whose credit never came, is breached, once the backlog is read."""
    rules = deployment.workdir / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(RULE)
    promised = datetime.now(UTC)
    with _worker(deployment) as worker:
        publish(
            deployment,
            event("support:fee.waiver_promised", "cust-kept", promised),
            event("support:fee.waiver_promised", "cust-forgotten", promised),
        )
        _await_metric(worker, "cxmon_open_expectations{", 2)
    fillers = [
        event("web:page.viewed", "cust-kept", promised + timedelta(seconds=1), n)
        for n in range(FILLERS)
    ]
    credit = event("billing:credit.issued", "cust-kept", promised + timedelta(seconds=2))
    publish(deployment, *fillers, credit)
    while datetime.now(UTC) < promised + timedelta(seconds=WITHIN_S + 1):
        time.sleep(0.1)  # the outage lasts past both deadlines by the wall clock
    with _worker(deployment) as worker:
        alerts = deployment.alerts(expect=1, quiet_s=3)
        assert _metric(worker, "cxmon_events_consumed_total{") >= FILLERS + 1
    assert [(a["rule_id"], a["status"], a["key"]) for a in alerts] == [
        ("waiver-not-credited", "firing", "cust-forgotten")
    ]


def _worker(deployment: Deployment) -> AbstractContextManager[WorkerProcess]:
    return deployment.worker(
        deployment.workdir / "rules",
        CXMON_SWEEP_INTERVAL_S="0.05",
        CXMON_LATENESS_S="1",  # the backlog is older than the lateness, as after an outage
        CXMON_CONSOLE_ALERTS="false",
    )


def _metric(worker: WorkerProcess, prefix: str) -> float:
    lines = worker.scrape().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


def _await_metric(
    worker: WorkerProcess, prefix: str, value: float, timeout_s: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while _metric(worker, prefix) < value:
        assert time.monotonic() < deadline, f"{prefix} never reached {value}"
        time.sleep(0.05)
