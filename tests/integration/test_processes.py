"""`cxmon run --processes 2`: two workers in one group under one supervisor."""

from __future__ import annotations

import signal
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, publish, waiver_and_charge

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _time(event: Event) -> datetime:
    return event.time


def test_two_processes_share_the_partitions_and_stop_together(deployment: Deployment) -> None:
    now = datetime.now(UTC)
    customers = [f"proc-{i:02d}" for i in range(12)]
    with deployment.worker(RULES, CXMON_PROCESSES="2") as group:
        # the supervisor writes the ready file once both workers are ready
        pages = [_scrape(group.metrics_port), _scrape(group.metrics_port + 1)]
        assert all("cxmon_worker_ready 1.0" in page for page in pages), group.log()
        # in event-time order: within a partition a charge would make a later-sent waiver late
        waived_at = now - timedelta(hours=2)
        events = sorted((e for c in customers for e in waiver_and_charge(c, waived_at)), key=_time)
        publish(deployment, *events)
        alerts = deployment.alerts(expect=len(customers), timeout_s=60)
        assert sorted(a["key"] for a in alerts) == customers
        # both processes consumed: the 4 input partitions are split between them
        consumed = [
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in _scrape(port).splitlines()
                if line.startswith("cxmon_events_consumed_total{")
            )
            for port in (group.metrics_port, group.metrics_port + 1)
        ]
        assert sum(consumed) == 2 * len(customers) and min(consumed) > 0, consumed
        group.process.send_signal(signal.SIGTERM)  # the supervisor alone: it forwards it
        assert group.process.wait(timeout=40) == 0, group.log()
    with pytest.raises(OSError):
        _scrape(group.metrics_port + 1)  # the second worker is gone too
