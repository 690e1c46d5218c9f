"""The second peer: the same three rules (peer_quix.rules) in a hand-written aiokafka consumer,
state in a plain dict per customer (not durable). Usage: peer_aiokafka.py BOOTSTRAP TOPIC COUNT
RESULT_FILE"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.bench.peer_quix import rules


class DictState:
    """quixstreams' State interface (get/set) over a dict."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def set(self, name: str, value: Any) -> None:
        self.data[name] = value


async def run(bootstrap: str, topic: str, count: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"aiokafka-peer-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    states: dict[str, dict[str, Any]] = {}
    seen, alerts, first = 0, 0, 0.0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                first = first or time.perf_counter()
                for record in records:
                    event = json.loads(record.value)
                    state = DictState(states.setdefault(event.get("subject") or "", {}))
                    for alert in rules(event, state):
                        alerts += 1
                        await producer.send(f"{topic}.aiokafka-alerts", json.dumps(alert).encode())
                seen += len(records)
        await producer.flush()
        return {"rate": count / (time.perf_counter() - first), "alerts": alerts}
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    bootstrap, topic, count, result = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    figures = asyncio.run(run(bootstrap, topic, count))
    with open(result, "w", encoding="utf-8") as handle:
        json.dump(figures, handle)
