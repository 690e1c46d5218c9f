"""`billing-charges-waived-fee`: billing charges a fee that support promised to waive."""

from __future__ import annotations

from datetime import datetime

from monitor.alerts import Alert, alert_from
from monitor.engine import Ruleset
from monitor.events import Event
from monitor.rules import CompiledRule
from tests.unit.conftest import DAY, MINUTE, T0, event
from tests.unit.engine.harness import EngineHarness

RULE = "billing-charges-waived-fee"


def waiver(at: datetime = T0, fee: str = "late_fee", id: str = "waiver-1") -> Event:
    return event("support", "fee.waiver_promised", at=at, id=id, fee_code=fee)


def charge(
    at: datetime,
    fee: str = "late_fee",
    amount: int = 25,
    id: str = "invoice-1",
    subject: str = "c1",
) -> Event:
    return event(
        "billing", "invoice.charged", at=at, id=id, subject=subject, fee_code=fee, amount=amount
    )


def feed(detector: EngineHarness, *events: Event) -> list[Alert]:
    """Process events in the given order, each at its own event time; the alerts raised."""
    return [alert_from(f) for e in events for f in detector.process(e, e.time)]


def test_charge_after_waiver_is_one_firing_alert(detector: EngineHarness) -> None:
    alerts = feed(detector, waiver(), charge(T0 + 3 * DAY))
    assert [(a.status, a.rule_id, a.key) for a in alerts] == [("firing", RULE, "c1")]


def test_alert_owners_run_from_promise_to_breach(detector: EngineHarness) -> None:
    [alert] = feed(detector, waiver(), charge(T0 + 3 * DAY))
    assert alert.owners == ["support", "billing"]
    assert (alert.from_department, alert.to_department) == ("support", "billing")


def test_alert_message_says_amount_and_delay(detector: EngineHarness) -> None:
    [alert] = feed(detector, waiver(), charge(T0 + 3 * DAY, amount=40))
    assert alert.message == (
        "c1 was charged 40 for late_fee 3 days after support promised to waive it"
    )


def test_alert_evidence_is_the_cross_department_timeline(detector: EngineHarness) -> None:
    [alert] = feed(detector, waiver(), charge(T0 + 3 * DAY))
    assert [(e.department, e.type, e.slot) for e in alert.evidence] == [
        ("support", "fee.waiver_promised", "first"),
        ("billing", "invoice.charged", "then"),
    ]


def test_charge_of_another_fee_is_no_alert(detector: EngineHarness) -> None:
    assert feed(detector, waiver(fee="late_fee"), charge(T0 + DAY, fee="setup_fee")) == []


def test_waiver_of_fee_outside_the_list_is_no_alert(detector: EngineHarness) -> None:
    assert feed(detector, waiver(fee="annual_fee"), charge(T0 + DAY, fee="annual_fee")) == []


def test_charge_to_another_customer_is_no_alert(detector: EngineHarness) -> None:
    assert feed(detector, waiver(), charge(T0 + DAY, subject="c2")) == []


def test_charge_on_the_last_day_of_the_window_alerts(detector: EngineHarness) -> None:
    assert len(feed(detector, waiver(), charge(T0 + 30 * DAY))) == 1


def test_charge_after_the_window_is_no_alert(detector: EngineHarness) -> None:
    assert feed(detector, waiver(), charge(T0 + 31 * DAY)) == []


def test_zero_amount_charge_is_no_alert(detector: EngineHarness) -> None:
    assert feed(detector, waiver(), charge(T0 + DAY, amount=0)) == []


def test_charge_processed_before_its_waiver_still_alerts(detector: EngineHarness) -> None:
    early_charge = charge(T0 + 2 * MINUTE)
    assert detector.process(early_charge, T0 + 2 * MINUTE) == []
    findings = detector.process(waiver(T0), T0 + 3 * MINUTE)
    assert [(f.rule.id, f.key, f.status) for f in findings] == [(RULE, "c1", "firing")]


def test_redelivered_charge_is_no_second_alert(detector: EngineHarness) -> None:
    alerts = feed(detector, waiver(), charge(T0 + DAY), charge(T0 + DAY))
    assert len(alerts) == 1


def test_second_charge_within_realert_window_is_suppressed(detector: EngineHarness) -> None:
    alerts = feed(detector, waiver(), charge(T0 + DAY), charge(T0 + 2 * DAY, id="invoice-2"))
    assert len(alerts) == 1


def test_new_conflict_after_realert_window_alerts_again(detector: EngineHarness) -> None:
    alerts = feed(
        detector,
        waiver(),
        charge(T0 + DAY),
        waiver(T0 + 31 * DAY, id="waiver-2"),
        charge(T0 + 32 * DAY, id="invoice-2"),
    )
    assert len(alerts) == 2


def test_state_expires_once_the_window_has_passed(detector: EngineHarness) -> None:
    feed(detector, waiver(), charge(T0 + DAY, fee="setup_fee"))
    detector.advance(T0 + 29 * DAY)
    assert (RULE, "c1") in detector.states
    detector.advance(T0 + 40 * DAY)
    assert (RULE, "c1") not in detector.states


def test_same_conflict_has_same_fingerprint(shipped_rules: list[CompiledRule]) -> None:
    def fingerprint_of_run() -> str:
        [alert] = feed(EngineHarness(Ruleset(shipped_rules)), waiver(), charge(T0 + DAY))
        return alert.fingerprint

    assert fingerprint_of_run() == fingerprint_of_run()


def test_different_charges_have_different_fingerprints(detector: EngineHarness) -> None:
    alerts = feed(
        detector,
        waiver(),
        charge(T0 + DAY),
        waiver(T0 + 31 * DAY, id="waiver-2"),
        charge(T0 + 32 * DAY, id="invoice-2"),
    )
    assert len({a.fingerprint for a in alerts}) == 2
