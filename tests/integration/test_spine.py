"""The spine through real processes: events in on a real broker, alerts and rejects out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, publish

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def _event(id_: str, source: str, type_: str, at: datetime, customer: str, **data: object) -> Event:
    return Event(id=id_, source=source, type=type_, time=at, subject=customer, data=dict(data))


def test_conflicts_alert_once_and_bad_records_are_dead_lettered(deployment: Deployment) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(days=5)
    # In event-time order, as one producer per department would send them.
    events = [
        # stalled: a deal closed five days ago; onboarding never held the kickoff (SLA 3d)
        _event("s1", "sales", "deal.closed", t0, "cust-stalled", deal_id="D-1"),
        # no conflict: a deal whose kickoff came in time
        _event("s2", "sales", "deal.closed", t0, "cust-happy", deal_id="D-2"),
        _event(
            "o2", "onboarding", "kickoff.held", t0 + timedelta(days=1), "cust-happy", deal_id="D-2"
        ),
        # no conflict: a waiver, then a charge for another fee
        _event(
            "w3",
            "support",
            "fee.waiver_promised",
            now - timedelta(hours=5),
            "cust-ok",
            fee_code="late_fee",
        ),
        _event(
            "b3",
            "billing",
            "invoice.charged",
            now - timedelta(hours=4),
            "cust-ok",
            fee_code="setup_fee",
            amount=30,
        ),
        # contradiction: support waived the late fee, billing charged it anyway
        _event(
            "w1",
            "support",
            "fee.waiver_promised",
            now - timedelta(hours=3),
            "cust-waived",
            fee_code="late_fee",
        ),
        _event(
            "b1",
            "billing",
            "invoice.charged",
            now - timedelta(hours=1),
            "cust-waived",
            fee_code="late_fee",
            amount=25,
        ),
    ]
    with deployment.worker(RULES) as worker:
        publish(deployment, *events[:-1])
        publish(deployment, events[-1], binary=True)  # CloudEvents binary mode: ce_* headers
        with deployment.publisher() as out:
            out.send_raw(b'{"specversion": "1.0", "id": "broken"')
            out.flush()
        alerts = deployment.alerts(expect=2, timeout_s=45)
        rejects = deployment.read("dlq", expect=1, timeout_s=20)
    summary = sorted((a["rule_id"], a["key"], a["status"]) for a in alerts)
    assert summary == [
        ("billing-charges-waived-fee", "cust-waived", "firing"),
        ("sales-onboarding-handoff-stalled", "cust-stalled", "firing"),
    ], worker.log()
    waiver = next(a for a in alerts if a["rule_id"] == "billing-charges-waived-fee")
    assert "25" in waiver["message"] and "late_fee" in waiver["message"]
    assert [e["department"] for e in waiver["evidence"]] == ["support", "billing"]
    assert waiver["owners"] == ["support", "billing"]
    assert [r.value for r in rejects] == [b'{"specversion": "1.0", "id": "broken"']
    assert dict(rejects[0].headers)["cx_reject_reason"] == b"bad_json"
