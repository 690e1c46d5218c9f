"""200,000 stored states: neither a worker's start nor a rule reload holds its event loop
(issue 20, item 6: a reload held it 26 s, a start 33 s after ready, before indexing and
sweeping went in batches)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rocksdict
from aiokafka import AIOKafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from monitor.engine import Ruleset
from monitor.engine.driver import DictStore, Driver
from monitor.engine.stored import slot_of
from monitor.events import Event
from monitor.rules import load_rules
from streams.table_store import partition_for
from tests.integration.harness import Deployment, WorkerProcess, waiver_rules

pytestmark = pytest.mark.integration
STATES = 200_000
PARTITIONS = [0, 1, 2, 3]
LAG_BOUND_S = 5.0  # a bucket of cxmon_event_loop_lag_seconds; the loop was held 9-26 s before


def _state_records(rules: Path) -> dict[int, list[tuple[bytes, bytes]]]:
    """The changelog records of STATES customers each holding a waiver from two hours ago, by
    partition: one state made by the driver, its stored bytes given to every key."""
    ruleset = Ruleset(load_rules([rules]).rules)
    store = DictStore()
    driver = Driver(ruleset, store)
    now = datetime.now(UTC)
    waiver = Event(
        id="w",
        source="support",
        type="fee.waiver_promised",
        time=now - timedelta(hours=2),
        subject="template",
        data={"fee_code": "late_fee"},
    ).ref()
    (rule_id,) = next(iter(driver.routes(waiver).values()))
    driver.apply(0, "template", waiver, [rule_id], now)
    driver.commit()
    (raw,) = store.partitions[0].values()
    assert raw.startswith(b'{"p":0,')
    records: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in PARTITIONS}
    for n in range(STATES):
        customer = f"m{n}"
        partition = partition_for(customer, PARTITIONS)
        key = json.dumps(slot_of(rule_id, customer)).encode()  # the table's key serializer
        records[partition].append((key, b'{"p":%d,' % partition + raw[7:]))
    return records


async def _produce(
    bootstrap: str, topic: str, records: dict[int, list[tuple[bytes, bytes]]]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, max_batch_size=1 << 20, max_request_size=2 << 20
    )
    await producer.start()
    try:
        sent = []
        for partition, pairs in records.items():
            batch = producer.create_batch()
            for key, value in pairs:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _seed(deployment: Deployment, rules: Path, data_dir: Path) -> None:
    """A worker's state as it finds it on a restart with RocksDB: every state in the state
    table's changelog and in the local store, which records how far the changelog is in it
    (so the worker reads none of it again: Faust's recovery takes minutes for 200k records
    on this machine, a restart with a local store none)."""
    records = _state_records(rules)
    topic = f"cxmon-test-{deployment.suffix}-cx-state-changelog"
    admin = KafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, len(PARTITIONS), 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        admin.close()
    asyncio.run(_produce(deployment.bootstrap, topic, records))
    for partition, pairs in records.items():
        # Faust's RocksDB layout and offset key (faust-streaming, pinned in pyproject.toml)
        path = data_dir / "v1" / "tables" / f"cx-state-{partition}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True))
        try:
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in pairs:
                batch.put(key, value)
            db.write(batch)
            db.put(b"__faust\0offset__", str(len(pairs) - 1).encode())
        finally:
            db.close()


def _gauge(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    return float(found.group(1)) if found else -1.0


def _wait_for(
    worker: WorkerProcess, what: str, done: Callable[[str], bool], timeout_s: float = 90
) -> str:
    """The worker's metrics once `done` holds for them."""
    deadline = time.monotonic() + timeout_s
    metrics = ""
    while time.monotonic() < deadline:
        metrics = worker.scrape()
        if done(metrics):
            return metrics
        time.sleep(0.05)
    lag = "\n".join(line for line in metrics.splitlines() if "loop_lag" in line)
    entries = _gauge(metrics, "cxmon_state_entries")
    raise AssertionError(f"timed out waiting for {what}; state entries {entries}\n{lag}")


def _lag(metrics: str) -> tuple[float, float]:
    """(samples, samples that found the loop held longer than LAG_BOUND_S)."""
    count = _gauge(metrics, "cxmon_event_loop_lag_seconds_count")
    within = _gauge(metrics, f'cxmon_event_loop_lag_seconds_bucket{{le="{LAG_BOUND_S}"}}')
    return count, count - within


def _next_samples(worker: WorkerProcess, after: float) -> str:
    """Metrics once the loop was sampled twice more: whatever held it before has been seen."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = worker.scrape()
        if _lag(metrics)[0] >= after + 2:
            return metrics
        time.sleep(0.1)
    raise AssertionError(f"the event loop was not sampled: {worker.log()[-3000:]}")


def test_200k_states_are_indexed_and_swept_without_holding_the_event_loop(
    deployment: Deployment, tmp_path: Path
) -> None:
    """A worker restarts on 200k stored states (RocksDB) and, while it indexes them, a rule
    reload makes it index them afresh and sweep each once more: the indexing is seen in
    progress, and until every state is indexed again the loop is never held longer than
    LAG_BOUND_S (one call took 8.9 s indexing and 15.7 s sweeping before the batching)."""
    rules = waiver_rules(tmp_path)
    data_dir = tmp_path / "data"
    _seed(deployment, rules, data_dir)
    with deployment.worker(
        rules,
        CXMON_STORE="rocksdb://",
        CXMON_DATA_DIR=str(data_dir),
        CXMON_SWEEP_INTERVAL_S="0.1",
    ) as worker:
        began = time.monotonic()
        at_ready = _lag(worker.scrape())[0]
        # Indexing the stored states has begun; a reload now starts it over and also sweeps
        # every state once under the new rules.
        _wait_for(
            worker,
            "indexing in progress (one pass at once was the bug)",
            lambda m: 0 < _gauge(m, "cxmon_state_entries") < STATES,
        )
        (rules / "waivers.yaml").write_text(
            (rules / "waivers.yaml").read_text().replace("Billing charged", "Billing billed")
        )
        worker.process.send_signal(signal.SIGHUP)
        _wait_for(worker, "the reload", lambda _: "rules reloaded" in worker.log())
        indexed = _wait_for(
            worker, "every state indexed", lambda m: _gauge(m, "cxmon_state_entries") == STATES
        )
        samples, held = _lag(_next_samples(worker, _lag(indexed)[0]))
        took = time.monotonic() - began
        histogram = [line for line in worker.scrape().splitlines() if "loop_lag" in line]
    assert samples > at_ready
    assert held == 0, f"{took:.1f} s\n" + "\n".join(histogram)
