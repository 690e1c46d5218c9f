"""A backlog after an outage: a contradiction's two events read with a tick between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.harness import (
    WAIVED_FEE_CHARGED,
    Deployment,
    publish,
    waiver_and_charge,
)

pytestmark = pytest.mark.integration

# Same first event, same customer (so the same partition): once the waiver's hour has passed at
# the wall clock, a tick breaches this rule, which shows the tick swept the partition.
UNAPPLIED = """\
  - id: waiver-not-credited
    title: Billing did not credit a promised waiver
    kind: stalled
    severity: low
    owners: [support, billing]
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: credit.issued}
    within: 1h
"""


def test_a_tick_between_two_old_events_does_not_forget_the_first(deployment: Deployment) -> None:
    """Both events are two days old, far past the contradiction's 1 hour window at the wall
    clock, and ten minutes apart in event time. A tick that forgot by the wall clock dropped
    the waiver before the charge was read, and the conflict was never raised."""
    rules = deployment.workdir / "rules"
    rules.mkdir()
    waived = WAIVED_FEE_CHARGED.replace("within: 30d", "within: 1h")
    (rules / "rules.yaml").write_text(f"version: 1\nrules:\n{waived}{UNAPPLIED}")
    waiver, charge = waiver_and_charge(
        "cust-backlog", datetime.now(UTC) - timedelta(days=2), after=timedelta(minutes=10)
    )
    with deployment.worker(rules):
        publish(deployment, waiver)
        breached = deployment.alerts(expect=1, quiet_s=0)
        assert [a["rule_id"] for a in breached] == ["waiver-not-credited"]  # a tick has swept
        publish(deployment, charge)
        alerts = deployment.alerts(expect=2, quiet_s=1)
    assert sorted(a["rule_id"] for a in alerts) == ["waived-fee-charged", "waiver-not-credited"]
