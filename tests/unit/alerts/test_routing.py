"""The route tree, matchers and silences: pure, no broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.config import RouteSpec
from monitor.alerts.dispatch.route import compile_route, match_routes
from monitor.alerts.labels import alert_labels, parse_labels, parse_matcher
from monitor.alerts.silences import SilenceBook, new_silence
from tests.unit.alerts.conftest import make_alert

TREE = RouteSpec.model_validate(
    {
        "receiver": "console",
        "group_by": ["rule"],
        "routes": [
            {"match": {"severity": "critical"}, "receiver": "on-call", "continue": True},
            {"match": {"owners": "billing"}, "receiver": "billing"},
            {
                "match": {"owners": ["onboarding", "sales"]},
                "receiver": "onboarding",
                "group_by": ["rule", "key"],
            },
            {
                "match_re": {"rule": "marketing-.*"},
                "receiver": "marketing",
                "mute_time": [{"days": ["sat", "sun"]}],
            },
        ],
    }
)


def receivers(**labels: str) -> list[str]:
    return [r.receiver for r in match_routes(compile_route(TREE), labels)]


def test_first_matching_route_wins_and_continue_goes_on() -> None:
    assert receivers(owners="support,billing", severity="high") == ["billing"]
    assert receivers(owners="support,billing", severity="critical") == ["on-call", "billing"]


def test_owners_match_either_department_of_the_gap() -> None:
    assert receivers(owners="sales,onboarding") == ["onboarding"]
    assert receivers(owners="onboarding,support") == ["onboarding"]


def test_an_alert_no_child_takes_goes_to_the_parent() -> None:
    assert receivers(owners="marketing,support", rule="x") == ["console"]
    assert receivers(owners="marketing,support", rule="marketing-upsell") == ["marketing"]


def test_group_keys_follow_inherited_and_own_group_by() -> None:
    root = compile_route(TREE)
    labels = alert_labels(make_alert(3, owners=("sales", "onboarding")))
    (route,) = match_routes(root, labels)
    assert route.group_by == ("rule", "key")
    assert route.group_key(labels) == "root.2:{rule=billing-charges-waived-fee,key=cust-00003}"
    (billing,) = match_routes(root, alert_labels(make_alert(1)))
    assert billing.group_key(alert_labels(make_alert(1))) == billing.group_key(
        alert_labels(make_alert(2))
    )


def test_mute_time_windows_mute_the_route() -> None:
    (route,) = match_routes(compile_route(TREE), {"rule": "marketing-upsell"})
    assert route.muted_at(datetime(2026, 5, 2, 12, tzinfo=UTC))  # a Saturday
    assert not route.muted_at(datetime(2026, 5, 4, 12, tzinfo=UTC))  # a Monday


def test_matchers_parse_and_reject() -> None:
    assert parse_matcher("rule=~billing-.*").matches({"rule": "billing-x"})
    assert parse_matcher("owners!=billing").matches({"owners": "sales,onboarding"})
    with pytest.raises(ValueError, match="expected a matcher"):
        parse_matcher("nonsense")
    with pytest.raises(ValueError, match="expected a label"):
        parse_labels(["severity"])


def test_a_silence_matches_only_while_active() -> None:
    now = datetime(2026, 5, 4, 9, tzinfo=UTC)
    book = SilenceBook()
    silence = new_silence(
        ["rule=billing-charges-waived-fee", "owners=billing"],
        timedelta(hours=2),
        now,
        created_by="me",
        comment="",
    )
    book.upsert(silence)
    labels = alert_labels(make_alert())
    assert book.silencing(labels, now + timedelta(hours=1)) == silence
    assert book.silencing(labels, now + timedelta(hours=3)) is None
    book.upsert(silence.expired(now + timedelta(minutes=5)))
    assert book.silencing(labels, now + timedelta(minutes=10)) is None
