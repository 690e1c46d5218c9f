"""The Faust floor: a bare Faust agent that parses each event's JSON and counts it per customer in
a dict, on the same Faust app settings as the cxmon worker (fast-start group timings and fetch
wait). It is what any Faust application pays per event before doing any work. Faust's own
consumer by default; with --batch-delivery, the consumer the cxmon worker uses
(streams/consumer.py).
Usage: peer_faust.py BOOTSTRAP TOPIC COUNT RESULT_FILE [--batch-delivery]"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from typing import Any

from monitor.settings import Settings
from streams.app import new_app, new_worker


def main(bootstrap: str, topic: str, count: int, result: str, batch_delivery: bool) -> None:
    settings = Settings(
        bootstrap_servers=bootstrap,
        profile="fast-start",
        log_level="warning",
        batch_delivery=batch_delivery,
    )
    app = new_app(
        settings,
        f"faust-peer-{uuid.uuid4().hex[:6]}",
        store="memory://",
        datadir=os.path.join(os.path.dirname(result), "faust-peer-data"),  # not the cwd
    )
    events = app.topic(topic, key_serializer="raw", value_serializer="raw")
    per_customer: Counter[str] = Counter()
    progress = {"seen": 0, "first": 0.0}

    @app.agent(events)
    async def count_events(stream: Any) -> None:
        async for value in stream:
            progress["first"] = progress["first"] or time.perf_counter()
            per_customer[json.loads(value).get("subject") or ""] += 1
            progress["seen"] += 1
            if progress["seen"] == count:
                took = time.perf_counter() - progress["first"]
                with open(result, "w", encoding="utf-8") as handle:
                    json.dump({"rate": count / took, "customers": len(per_customer)}, handle)
                os.kill(os.getpid(), signal.SIGTERM)

    new_worker(app, settings).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], "--batch-delivery" in sys.argv)
