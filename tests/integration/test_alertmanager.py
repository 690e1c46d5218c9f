"""Alertmanager as a receiver, against a real Alertmanager (Debian's prometheus-alertmanager):
the alert shows with its labels, stays firing by re-posts, an Alertmanager silence mutes it
there, and a cxmon resolve resolves it."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.alertmanager import AlertmanagerServer, alertmanager
from tests.integration.harness import Deployment, WorkerProcess
from tests.integration.test_notifier import alert, metric, notifier, produce, wait_for

pytestmark = pytest.mark.integration


def in_alertmanager(am: AlertmanagerServer, fingerprint: str) -> dict[str, Any] | None:
    """The alert Alertmanager holds (active or silenced) for a cxmon fingerprint, if any."""
    found = [a for a in am.get("alerts") if a["labels"].get("fingerprint") == fingerprint]
    return found[0] if found else None


def test_alertmanager_shows_silences_and_resolves_cxmon_alerts(deployment: Deployment) -> None:
    with alertmanager(deployment.workdir) as am:
        alerting = f"""
version: 1
receivers:
  - name: am
    channels: [{{url: "alertmanager://127.0.0.1:{am.port}", resend: 1s}}]
route:
  receiver: am
  group_wait: 0s
  group_interval: 0s
"""
        with notifier(deployment, alerting) as (proc, _):
            waived = alert(1, "billing-charges-waived-fee", ["support", "billing"], "high")
            waived = waived.model_copy(update={"labels": {"team": "billing-ops"}})
            steady = alert(2, "sales-onboarding-handoff-stalled", ["sales", "onboarding"])
            produce(deployment, waived, steady)
            wait_for(
                lambda: (
                    bool(in_alertmanager(am, waived.fingerprint))
                    and bool(in_alertmanager(am, steady.fingerprint))
                ),
                "both alerts in Alertmanager",
                proc,
            )
            shown = in_alertmanager(am, waived.fingerprint)
            assert shown is not None
            first_end = shown["endsAt"]
            # Re-posted before its endsAt (4 x resend) passes: the end moves on, it stays firing.
            wait_for(
                lambda: (
                    (in_alertmanager(am, waived.fingerprint) or {}).get("endsAt", "") > first_end
                ),
                "a re-post",
                proc,
            )
            silence = am.post(
                "silences",
                {
                    "matchers": [
                        {"name": "alertname", "value": waived.rule_id, "isRegex": False},
                        {"name": "owners", "value": ".*billing.*", "isRegex": True},
                    ],
                    "startsAt": datetime.now(UTC).isoformat(),
                    "endsAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                    "createdBy": "test",
                    "comment": "INC-42",
                },
            )
            wait_for(
                lambda: (
                    (in_alertmanager(am, waived.fingerprint) or {}).get("status", {}).get("state")
                    == "suppressed"
                ),
                "the Alertmanager silence to mute it",
                proc,
            )
            muted = in_alertmanager(am, waived.fingerprint)
            produce(deployment, waived.model_copy(update={"status": "resolved"}))
            wait_for(
                lambda: in_alertmanager(am, waived.fingerprint) is None,
                "the resolve to reach Alertmanager",
                proc,
            )
            # Two more re-post rounds (of the alert still firing) do not bring it back.
            rounds = metric(proc, "cxmon_alertmanager_resends_total")
            wait_for(
                lambda: metric(proc, "cxmon_alertmanager_resends_total") >= rounds + 2,
                "two more re-post rounds",
                proc,
            )
            assert in_alertmanager(am, waived.fingerprint) is None
            still = in_alertmanager(am, steady.fingerprint)
        # A restarted notifier rebuilds its board from cx.alerts and keeps re-posting the alert
        # still firing: without that, Alertmanager would resolve it 4 s (4 x resend) later.
        assert still is not None
        with notifier(deployment, alerting) as (proc, _):
            wait_for(lambda: "1 alerts to keep re-posting" in proc.log(), "the re-seed", proc)
            board = board_data(proc)
            wait_for(
                lambda: (
                    (in_alertmanager(am, steady.fingerprint) or {}).get("endsAt", "")
                    > still["endsAt"]
                ),
                "a re-post after the restart",
                proc,
            )
    assert [c["fingerprint"] for c in board["open"]] == [steady.fingerprint]
    assert [(c["fingerprint"], c["status"]) for c in board["resolved"]] == [
        (waived.fingerprint, "resolved")
    ]
    assert shown["labels"] == {
        "alertname": "billing-charges-waived-fee",
        "severity": "high",
        "kind": "contradiction",
        "owners": "support,billing",
        "from_department": "support",
        "to_department": "billing",
        "fingerprint": waived.fingerprint,
        "team": "billing-ops",
    }
    assert shown["annotations"]["message"] == waived.message
    assert shown["annotations"]["evidence"].endswith("support x.happened")
    assert shown["status"]["state"] == "active"
    assert muted is not None and muted["status"]["silencedBy"] == [silence["silenceID"]]
    assert still["status"]["state"] == "active"


def board_data(proc: WorkerProcess) -> dict[str, Any]:
    """The notifier's board API."""
    address = f"http://127.0.0.1:{proc.metrics_port}/api/v1/conflicts"
    with urllib.request.urlopen(address, timeout=5) as response:
        result: dict[str, Any] = json.load(response)
    return result
