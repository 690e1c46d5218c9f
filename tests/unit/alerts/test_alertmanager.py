"""What Alertmanager receives: the API v2 alert documents, and the re-post of firing alerts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer

from monitor.alerts.channels import ChannelError
from monitor.alerts.channels.alertmanager import AlertmanagerChannel, api_url, document
from monitor.alerts.config import RedactSpec
from monitor.alerts.redact import Redaction, pseudonym
from monitor.alerts.secrets import Redactor
from tests.unit.alerts.conftest import T0, make_alert

NOW = T0 + timedelta(hours=1)


def test_labels_name_the_conflict_but_never_the_customer_by_default() -> None:
    alert = make_alert(7)
    doc = document(alert, NOW, timedelta(minutes=1), key_label=False)
    assert doc["labels"] == {
        "alertname": "billing-charges-waived-fee",
        "severity": "high",
        "kind": "contradiction",
        "owners": "support,billing",
        "from_department": "support",
        "to_department": "billing",
        "fingerprint": "fp0007",
        "team": "billing",
        "email": "c7@example.com",
    }
    assert "cust-00007" not in json.dumps(doc["labels"])
    assert doc["annotations"]["summary"] == alert.title
    assert doc["annotations"]["message"] == alert.message
    assert doc["annotations"]["runbook_url"] == "https://wiki.example.com/cx/waivers"
    assert doc["annotations"]["evidence"].splitlines() == [
        "2026-05-04T09:00:00Z support step.0",
        "2026-05-04T09:01:00Z billing step.1",
    ]
    assert doc["startsAt"] == "2026-05-04T09:00:00Z"
    assert doc["endsAt"] == "2026-05-04T10:04:00Z"  # four resends ahead, as Prometheus does


def test_key_label_only_when_allowed_and_after_the_receivers_redaction() -> None:
    redaction = Redaction.from_spec(RedactSpec(hash=["key"]))
    assert redaction is not None
    alert = redaction.apply(make_alert(7))
    doc = document(alert, NOW, timedelta(minutes=1), key_label=True)
    assert doc["labels"]["key"] == pseudonym("cust-00007")
    assert "cust-00007" not in json.dumps(doc)


def test_a_rule_label_cannot_override_cxmons_own_and_is_made_prometheus_safe() -> None:
    alert = make_alert(1).model_copy(
        update={"labels": {"severity": "low", "key": "x", "cost-centre": "7", "1st": "y"}}
    )
    labels = document(alert, NOW, timedelta(minutes=1), key_label=False)["labels"]
    assert labels["severity"] == "high"
    assert "key" not in labels
    assert labels["cost_centre"] == "7" and labels["_1st"] == "y"


def test_resolved_alert_ends_when_it_resolved() -> None:
    resolved = make_alert(1, status="resolved").model_copy(
        update={"event_time": T0 + timedelta(minutes=30), "detected_at": T0 + timedelta(minutes=31)}
    )
    doc = document(resolved, NOW, timedelta(minutes=1), key_label=False)
    assert doc["endsAt"] == "2026-05-04T09:31:00Z"
    assert doc["startsAt"] <= doc["endsAt"]


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("alertmanager://127.0.0.1:9093", "http://127.0.0.1:9093/api/v2/alerts"),
        ("alertmanagers://am.example.com/am/", "https://am.example.com/am/api/v2/alerts"),
        ("http://u:p@am:9093/api/v2/alerts", "http://u:p@am:9093/api/v2/alerts"),
    ],
)
def test_url_forms(url: str, endpoint: str) -> None:
    assert api_url(url) == endpoint


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="alertmanager://HOST:PORT"):
        api_url("slack://x")


async def test_firing_alerts_are_reposted_until_resolved(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v2/alerts", method="POST").respond_with_data("")
    outcomes: list[str] = []
    channel = AlertmanagerChannel(
        f"alertmanager://127.0.0.1:{httpserver.port}",
        Redactor(),
        resend=timedelta(hours=1),  # rounds are driven by hand below
        on_resend=outcomes.append,
        now=lambda: NOW,
    )
    first, second = make_alert(1), make_alert(2)
    await channel.send([first, second], receiver="am", group_key="g", repeat=False)
    await channel.send(
        [make_alert(1, status="resolved")], receiver="am", group_key="g", repeat=False
    )
    await channel.resend_once()
    posted = [json.loads(request.get_data()) for request, _ in httpserver.log]
    assert [[a["labels"]["fingerprint"] for a in body] for body in posted] == [
        ["fp0001", "fp0002"],
        ["fp0001"],
        ["fp0002"],  # the re-post: only what is still firing
    ]
    assert outcomes == ["success"]
    assert channel._task is not None
    channel._task.cancel()


async def test_a_refused_alert_is_not_retried_and_a_server_error_is(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_ordered_request("/api/v2/alerts").respond_with_data("bad label", status=400)
    httpserver.expect_ordered_request("/api/v2/alerts").respond_with_data("down", status=503)
    channel = AlertmanagerChannel(f"alertmanager://127.0.0.1:{httpserver.port}", Redactor())
    with pytest.raises(ChannelError) as refused:
        await channel.send([make_alert(1)], receiver="am", group_key="g", repeat=False)
    with pytest.raises(ChannelError) as down:
        await channel.send([make_alert(2)], receiver="am", group_key="g", repeat=False)
    assert not refused.value.retryable and "400" in str(refused.value)
    assert down.value.retryable
    assert channel._task is not None
    channel._task.cancel()
