"""Every shipped rule, and so every kind, fires through the real worker exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from monitor.events import Event
from monitor.events.codec import encode
from monitor.rules import load_rules
from streams.table_store import partition_for
from tests.integration.harness import Deployment, publish

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"
H = timedelta(hours=1)
D = timedelta(days=1)


def scenario(now: datetime) -> list[Event]:
    """One customer per rule whose events make it fire, plus customers whose events must not."""
    counter = iter(range(10_000))

    def ev(customer: str, ago: timedelta, source: str, type_: str, **data: object) -> Event:
        return Event(
            id=f"it-{next(counter)}",
            source=source,
            type=type_,
            time=now - ago,
            subject=customer,
            data=dict(data),
        )

    promised_by = (now - 3 * D).isoformat().replace("+00:00", "Z")
    events = [
        ev("waived", 3 * H, "support", "fee.waiver_promised", fee_code="late_fee"),
        ev("waived", 1 * H, "billing", "invoice.charged", fee_code="late_fee", amount=25),
        ev("stalled-deal", 4 * D, "sales", "deal.closed", deal_id="D-1"),
        ev("no-refund", 6 * D, "support", "refund.promised", case_id="K-1", amount=80),
        ev("no-owner", 10 * D, "onboarding", "onboarding.completed", plan="growth"),
        ev("p1", 5 * H, "support", "incident.opened", incident_id="I-1", priority="P1"),
        ev("p1", 4 * H, "marketing", "upsell.sent", campaign="premium"),
        ev("fatigued", 9 * H, "marketing", "email.sent"),
        ev("fatigued", 6 * H, "sales", "call.made"),
        ev("fatigued", 3 * H, "support", "call.made"),
        ev("fatigued", 1 * H, "billing", "email.sent"),
        ev(
            "ticket",
            50 * timedelta(minutes=1),
            "support",
            "ticket.customer_replied",
            ticket_id="T-1",
        ),
        ev("ticket", 40 * timedelta(minutes=1), "support", "ticket.closed", ticket_id="T-1"),
        ev("no-contract", 2 * H, "billing", "invoice.issued", invoice_id="I-9", amount=990),
        ev("cancelled", 3 * D, "support", "subscription.cancellation_requested"),
        ev("cancelled", 2 * D, "billing", "invoice.charged", fee_code="subscription", amount=49),
        ev(
            "late-order",
            8 * D,
            "sales",
            "order.delivery_promised",
            order_id="O-1",
            promised_by=promised_by,
        ),
        ev("late-order", 1 * D, "fulfilment", "order.shipped", order_id="O-1"),
        # customers whose stories end well: nothing may fire for them
        ev("happy", 4 * D, "sales", "contract.signed"),
        ev("happy", 4 * D, "sales", "deal.closed", deal_id="D-2"),
        ev("happy", 3 * D, "onboarding", "kickoff.held", deal_id="D-2"),
        ev("happy", 2 * D, "billing", "invoice.issued", invoice_id="I-2", amount=990),
        ev("happy", 20 * H, "support", "incident.opened", incident_id="I-2", priority="P1"),
        ev("happy", 19 * H, "support", "incident.resolved", incident_id="I-2"),
        ev("happy", 10 * H, "marketing", "survey.sent", campaign="nps"),
    ]
    return sorted(events, key=lambda e: e.time)


def test_each_rule_fires_once_for_its_customer_and_never_for_the_happy_one(
    deployment: Deployment,
) -> None:
    rules = load_rules([RULES]).rules
    with deployment.worker(RULES) as worker:
        publish(deployment, *scenario(datetime.now(UTC)))
        alerts = deployment.alerts(expect=len(rules), timeout_s=60)
    fired = sorted((a["rule_id"], a["key"], a["status"]) for a in alerts)
    assert fired == EXPECTED, worker.log()
    assert {r.kind for r in rules} == {"contradiction", "stalled", "requires", "during", "burst"}


def test_events_keyed_otherwise_still_meet_their_customers_state(deployment: Deployment) -> None:
    """Records not keyed by customer (here all under one key, so in order on one partition)
    alert exactly as well: a customer whose state lives on another partition gets its events
    through the keyed topic, the others are applied where they arrive."""
    events = scenario(datetime.now(UTC))
    partitions = list(range(4))  # the harness's CXMON_TOPIC_PARTITIONS
    arrival = partition_for(ONE_KEY.decode(), partitions)
    customers = {e.subject for e in events}
    crossing = {c for c in customers if partition_for(c, partitions) != arrival}
    assert crossing and crossing != customers  # both paths are taken
    with deployment.worker(RULES) as worker:
        producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, acks=1)
        try:
            for event in events:
                producer.send(deployment.topics["events"], value=encode(event), key=ONE_KEY)
            producer.flush()
        finally:
            producer.close()
        alerts = deployment.alerts(expect=len(EXPECTED), timeout_s=60)
        keyed = deployment.read("keyed", expect=1, quiet_s=0)
    fired = sorted((a["rule_id"], a["key"], a["status"]) for a in alerts)
    assert fired == EXPECTED, worker.log()
    assert keyed, "no event crossed the keyed topic"


ONE_KEY = b"one-key-for-every-record"
EXPECTED = sorted(
    [
        ("billing-charges-waived-fee", "waived", "firing"),
        ("sales-onboarding-handoff-stalled", "stalled-deal", "firing"),
        ("refund-promised-not-issued", "no-refund", "firing"),
        ("onboarding-support-handoff-stalled", "no-owner", "firing"),
        ("marketing-during-p1-incident", "p1", "firing"),
        ("contact-fatigue", "fatigued", "firing"),
        ("ticket-closed-while-customer-replying", "ticket", "firing"),
        ("invoice-without-signed-contract", "no-contract", "firing"),
        ("billed-after-cancellation", "cancelled", "firing"),
        ("shipped-after-promised-date", "late-order", "firing"),
    ]
)
