"""`sales-onboarding-handoff-stalled`: a closed deal gets no onboarding kickoff within 3 days."""

from __future__ import annotations

from datetime import datetime

from monitor.alerts import Alert, alert_from
from monitor.engine import Ruleset
from monitor.events import Event
from monitor.rules import CompiledRule
from tests.unit.conftest import DAY, HOUR, MINUTE, T0, event
from tests.unit.engine.harness import EngineHarness

RULE = "sales-onboarding-handoff-stalled"
DUE = T0 + 3 * DAY


def closed(at: datetime = T0, deal: str = "d1") -> Event:
    return event("sales", "deal.closed", at=at, id=f"closed-{deal}", deal_id=deal)


def kickoff(at: datetime, deal: str = "d1") -> Event:
    return event("onboarding", "kickoff.held", at=at, id=f"kickoff-{deal}", deal_id=deal)


def cancelled(at: datetime, deal: str = "d1") -> Event:
    return event("sales", "deal.cancelled", at=at, id=f"cancelled-{deal}", deal_id=deal)


def feed(detector: EngineHarness, *events: Event) -> list[Alert]:
    """Process events in the given order, each at its own event time; the alerts raised."""
    return [alert_from(f) for e in events for f in detector.process(e, e.time)]


def advance(detector: EngineHarness, now: datetime) -> list[Alert]:
    return [alert_from(f) for f in detector.advance(now)]


def test_deal_without_kickoff_fires_past_the_deadline(detector: EngineHarness) -> None:
    feed(detector, closed())
    alerts = advance(detector, DUE + HOUR)
    assert [(a.status, a.rule_id, a.key) for a in alerts] == [("firing", RULE, "c1")]


def test_deal_without_kickoff_fires_only_once(detector: EngineHarness) -> None:
    feed(detector, closed())
    advance(detector, DUE + HOUR)
    assert advance(detector, DUE + 2 * HOUR) == []


def test_deal_does_not_fire_before_the_deadline(detector: EngineHarness) -> None:
    feed(detector, closed())
    assert advance(detector, DUE - MINUTE) == []


def test_breach_event_time_is_the_deadline(detector: EngineHarness) -> None:
    feed(detector, closed())
    [alert] = advance(detector, DUE + HOUR)
    assert (alert.event_time, alert.detected_at) == (DUE, DUE + HOUR)


def test_breach_message_names_deal_and_close_time(detector: EngineHarness) -> None:
    feed(detector, closed())
    [alert] = advance(detector, DUE + HOUR)
    assert alert.message == (
        "Deal d1 for c1 closed 2026-05-01 09:00 UTC "
        "and onboarding has not held a kickoff within 3 days"
    )


def test_kickoff_in_time_is_no_alert(detector: EngineHarness) -> None:
    feed(detector, closed(), kickoff(T0 + DAY))
    assert advance(detector, T0 + 10 * DAY) == []


def test_kickoff_for_another_deal_does_not_count(detector: EngineHarness) -> None:
    feed(detector, closed(deal="d1"), kickoff(T0 + DAY, deal="d2"))
    assert len(advance(detector, DUE + HOUR)) == 1


def test_kickoff_processed_before_its_deal_is_no_alert(detector: EngineHarness) -> None:
    detector.process(kickoff(T0 + MINUTE), T0 + MINUTE)
    detector.process(closed(T0), T0 + 2 * MINUTE)
    assert advance(detector, T0 + 10 * DAY) == []


def test_cancelled_deal_is_no_alert(detector: EngineHarness) -> None:
    feed(detector, closed(), cancelled(T0 + DAY))
    assert advance(detector, T0 + 10 * DAY) == []


def test_redelivered_close_is_one_alert(detector: EngineHarness) -> None:
    feed(detector, closed(), closed())
    assert len(advance(detector, DUE + HOUR)) == 1


def test_late_kickoff_resolves_the_breach_alert(detector: EngineHarness) -> None:
    feed(detector, closed())
    [firing] = advance(detector, DUE + HOUR)
    [resolved] = feed(detector, kickoff(DUE + DAY))
    assert resolved.status == "resolved"
    assert resolved.fingerprint == firing.fingerprint


def test_late_kickoff_message_says_how_late(detector: EngineHarness) -> None:
    feed(detector, closed())
    advance(detector, DUE + HOUR)
    [resolved] = feed(detector, kickoff(DUE + DAY))
    assert resolved.message == "Resolved: onboarding sent kickoff.held 1 day after the deadline"


def test_state_expires_after_the_breach_window(detector: EngineHarness) -> None:
    feed(detector, closed())
    advance(detector, DUE + HOUR)
    assert list(detector.states) == [(RULE, "c1")]
    advance(detector, DUE + 10 * DAY)
    assert detector.states == {}


def test_state_of_answered_deal_expires(detector: EngineHarness) -> None:
    feed(detector, closed(), kickoff(T0 + DAY))
    advance(detector, T0 + 10 * DAY)
    assert detector.states == {}


def test_same_breach_has_same_fingerprint(shipped_rules: list[CompiledRule]) -> None:
    def fingerprint_of_run() -> str:
        detector = EngineHarness(Ruleset(shipped_rules))
        feed(detector, closed())
        [alert] = advance(detector, DUE + HOUR)
        return alert.fingerprint

    assert fingerprint_of_run() == fingerprint_of_run()


def test_kickoff_after_suppressed_breach_resolves_nothing(detector: EngineHarness) -> None:
    feed(detector, closed(T0, deal="d1"), closed(T0 + DAY, deal="d2"))
    fired = advance(detector, DUE + HOUR) + advance(detector, DUE + DAY + HOUR)
    resolved = feed(detector, kickoff(DUE + 2 * DAY, deal="d2"))
    assert {a.fingerprint for a in resolved} <= {a.fingerprint for a in fired}


def test_late_kickoff_before_any_sweep_still_reports_the_breach(detector: EngineHarness) -> None:
    closed = event("sales", "deal.closed", deal_id="D-1")
    kickoff = event("onboarding", "kickoff.held", at=T0 + 4 * DAY, deal_id="D-1")
    findings = detector.process(closed, T0) + detector.process(kickoff, kickoff.time)
    alerts = [alert_from(f) for f in findings]
    assert [(a.status, a.event_time) for a in alerts] == [
        ("firing", T0 + 3 * DAY),
        ("resolved", kickoff.time),
    ]
    assert alerts[0].fingerprint == alerts[1].fingerprint


def test_only_follow_ups_by_the_deadline_count_as_handoffs_in_time(detector: EngineHarness) -> None:
    feed(detector, closed(deal="d1"), kickoff(T0 + 2 * DAY, deal="d1"))
    feed(detector, closed(T0 + HOUR, deal="d2"))
    advance(detector, T0 + HOUR + 3 * DAY + MINUTE)
    feed(detector, kickoff(T0 + 4 * DAY, deal="d2"))  # late: a breach, then resolved
    ruleset = detector.ruleset
    assert [rule for rule, _ in ruleset.handoffs] == [RULE, RULE]
    assert ruleset.handoffs_in_time == {RULE: 1}


def test_resolved_update_does_not_repeat_the_firing_message(detector: EngineHarness) -> None:
    feed(detector, closed())
    [firing] = advance(detector, DUE + HOUR)
    [resolved] = feed(detector, kickoff(DUE + DAY))
    assert firing.message not in resolved.message
    assert "has not held a kickoff" in firing.message
