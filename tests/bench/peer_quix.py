"""The peer: the same three rules hand-written as a quixstreams application (runs in its own
virtualenv, see test_peer_bench.py). Usage: peer_quix.py BOOTSTRAP TOPIC COUNT RESULT_FILE

Contradiction: a fee support promised to waive is charged within 30 days. Stalled: a closed deal
gets no kickoff within 3 days (checked on the key's next event; no wall-clock timer). Burst: four
distinct departments contact a customer within a day. Events are re-keyed by subject (a
repartition topic, as cxmon re-keys onto its keyed topic); state is quixstreams' RocksDB store.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

DAY = timedelta(days=1)
CONTACTS = {"call.made", "email.sent", "sms.sent", "meeting.booked"}
WAIVABLE = {"late_fee", "setup_fee", "overage_fee"}


def rules(event: dict[str, Any], state: Any) -> list[dict[str, Any]]:
    """The three rules on one customer's event; the alerts it fires."""
    at = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    kind, data, out = event["type"], event.get("data") or {}, []
    source, key = event["source"], event.get("subject")
    waivers = state.get("waivers", {})
    if kind == "fee.waiver_promised" and source == "support" and data.get("fee_code") in WAIVABLE:
        waivers[data["fee_code"]] = event["time"]
        state.set("waivers", waivers)
    elif kind == "invoice.charged" and source == "billing" and data.get("amount", 0) > 0:
        promised = waivers.get(data.get("fee_code"))
        if promised and at - datetime.fromisoformat(promised.replace("Z", "+00:00")) <= 30 * DAY:
            out.append({"rule": "billing-charges-waived-fee", "key": key, "id": event["id"]})
    stored = state.get("deals")
    deals = dict(stored or {})
    if kind == "deal.closed" and source == "sales":
        deals[data.get("deal_id")] = event["time"]
    elif kind in ("kickoff.held", "deal.cancelled"):
        deals.pop(data.get("deal_id"), None)
    for deal, opened in list(deals.items()):
        if at - datetime.fromisoformat(opened.replace("Z", "+00:00")) > 3 * DAY:
            out.append({"rule": "sales-onboarding-handoff-stalled", "key": key, "deal": deal})
            del deals[deal]
    if deals != (stored or {}):
        state.set("deals", deals)
    if kind in CONTACTS:
        recent = [c for c in state.get("contacts", []) if at - datetime.fromisoformat(c[0]) <= DAY]
        recent.append([at.isoformat(), source])
        if len({c[1] for c in recent}) >= 4:
            out.append({"rule": "contact-fatigue", "key": key, "id": event["id"]})
            recent = []
        state.set("contacts", recent)
    return out


def shim_topic_configs() -> None:
    """The embedded broker's DescribeConfigs answer carries no `retention.ms`, which quixstreams
    needs to derive changelog and repartition topics: report Kafka's defaults when missing."""
    from quixstreams.models.topics.admin import TopicAdmin

    original = TopicAdmin.inspect_topics

    def inspect_topics(self: Any, names: list[str], timeout: float = 30) -> Any:
        found = original(self, names, timeout)
        for config in found.values():
            if config is not None:
                config.extra_config.setdefault("retention.ms", "604800000")
                config.extra_config.setdefault("retention.bytes", "-1")
        return found

    TopicAdmin.inspect_topics = inspect_topics


def main() -> None:
    from quixstreams import Application

    if "--shim" in sys.argv:
        shim_topic_configs()
    bootstrap, topic, count, result = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-peer-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        state_dir=f"{result}.state",
    )
    seen = {"n": 0, "first": 0.0, "alerts": 0}

    def counted(event: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        if not seen["n"]:
            seen["first"] = time.perf_counter()
        seen["n"] += 1
        found = rules(event, state)
        seen["alerts"] += len(found)
        if seen["n"] >= count:
            elapsed = time.perf_counter() - seen["first"]
            with open(result, "w", encoding="utf-8") as handle:
                json.dump({"rate": count / elapsed, "alerts": seen["alerts"]}, handle)
            app.stop()
        return found

    events = app.topic(topic, value_deserializer="json")
    alerts = app.topic(f"{topic}.peer-alerts", value_serializer="json")
    sdf = app.dataframe(events)
    if "--group-by" in sys.argv:  # re-key by subject through a repartition topic
        sdf = sdf.group_by(lambda e: e["subject"], name="by-subject")
    sdf = sdf.apply(counted, stateful=True, expand=True)
    sdf.to_topic(alerts)
    app.run()


if __name__ == "__main__":
    main()
