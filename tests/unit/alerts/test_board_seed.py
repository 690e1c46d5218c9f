"""After a restart, Alertmanager channels re-post the open conflicts they had posted before."""

from __future__ import annotations

from datetime import timedelta

from monitor.alerts.channels.alertmanager import AlertmanagerChannel
from monitor.alerts.config import RedactSpec, RouteSpec
from monitor.alerts.dispatch.route import compile_route
from monitor.alerts.pipeline import Receiver
from monitor.alerts.redact import Redaction, pseudonym
from monitor.alerts.secrets import Redactor
from monitor.alerts.silences import SilenceBook, new_silence
from monitor.events.envelope import utcnow
from streams.board import seed_alertmanagers
from tests.unit.alerts.conftest import make_alert


async def test_only_delivered_unsilenced_alerts_of_routed_receivers_are_seeded() -> None:
    am = AlertmanagerChannel("alertmanager://127.0.0.1:1", Redactor())
    other = AlertmanagerChannel("alertmanager://127.0.0.1:2", Redactor())
    receivers = {
        "am": Receiver("am", [am], Redaction.from_spec(RedactSpec(hash=["key"]))),
        "other": Receiver("other", [other]),
    }
    root = compile_route(
        RouteSpec.model_validate(
            {"receiver": "other", "routes": [{"match": {"owners": "billing"}, "receiver": "am"}]}
        )
    )
    delivered, undelivered, resolved, silenced = (make_alert(n) for n in range(1, 5))
    silences = SilenceBook()
    silences.upsert(
        new_silence(
            [f"key={silenced.key}"], timedelta(hours=1), utcnow(), created_by="t", comment="c"
        )
    )
    statuses = {
        delivered.fingerprint: "firing",
        resolved.fingerprint: "resolved",
        silenced.fingerprint: "firing",
    }
    count = seed_alertmanagers(
        [delivered, undelivered, resolved, silenced], root, receivers, silences, statuses
    )
    assert count == 1
    assert list(am.firing) == [delivered.fingerprint]
    assert am.firing[delivered.fingerprint].key == pseudonym(delivered.key)  # receiver's redaction
    assert other.firing == {}
    assert am._task is not None
    am._task.cancel()
