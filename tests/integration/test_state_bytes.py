"""State is bounded in bytes, not only entries: a customer whose held events are large keeps a
state a broker accepts, so it survives a restart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, publish, read_until, waiver_rules

pytestmark = pytest.mark.integration


def test_sixty_large_waivers_keep_a_state_that_survives_a_restart(
    deployment: Deployment, tmp_path: Path
) -> None:
    """60 waivers of 200 KB for one customer made one 12 MB changelog record, which the
    producer refused: the error was only logged and the state was gone after a restart."""
    rules = waiver_rules(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    waivers = [
        Event(
            id=f"w{n}",
            source="support",
            type="fee.waiver_promised",
            time=now - timedelta(hours=2) + timedelta(seconds=n),
            subject="big",
            data={"fee_code": "late_fee", "note": "x" * 200_000},
        )
        for n in range(60)
    ]
    charge = Event(
        id="c1",
        source="billing",
        type="invoice.charged",
        time=now - timedelta(hours=1),
        subject="big",
        data={"fee_code": "late_fee", "amount": 25},
    )
    changelog = f"cxmon-test-{deployment.suffix}-cx-state-changelog"
    with deployment.worker(rules) as worker:
        publish(deployment, *waivers)
        records = read_until(
            deployment.bootstrap,
            changelog,
            lambda found: any(b'"w59"' in (r.value or b"") for r in found),
            timeout_s=60,
        )
        metrics = worker.scrape()
    assert any(b'"w59"' in (r.value or b"") for r in records), worker.log()[-3000:]
    assert max(len(r.value or b"") for r in records) <= 512 * 1024
    evicted = re.search(
        r'^cxmon_state_evictions_total\{rule="waived-fee-charged"\} (\S+)$', metrics, re.M
    )
    assert evicted and float(evicted.group(1)) > 0
    # the table-size gauges show one state for the customer, within the bound
    entries = re.search(r"^cxmon_state_entries (\S+)$", metrics, re.M)
    size = re.search(r"^cxmon_state_bytes (\S+)$", metrics, re.M)
    assert entries and float(entries.group(1)) == 1, metrics
    assert size and 400_000 < float(size.group(1)) <= 512 * 1024
    # a new worker rebuilds the state from the changelog: the charge still meets its waiver
    with deployment.worker(rules) as worker:
        publish(deployment, charge)
        alerts = deployment.alerts(expect=1, timeout_s=30, quiet_s=1)
    assert [(a["rule_id"], a["key"]) for a in alerts] == [("waived-fee-charged", "big")], (
        worker.log()[-3000:]
    )
