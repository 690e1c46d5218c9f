"""Bytes per pending stalled expectation (changelog record and memory), and the time a fresh
worker takes to recover a changelog full of them (process start to ready) on the embedded broker.

Sizes: CXMON_BENCH_MEMORY_STATES (default 20,000 built with the engine), CXMON_BENCH_RECOVERY_SIZES
(default "100000,1000000" changelog records), CXMON_BENCH_RUNS (default 3 worker starts per size;
sizes above 100,000 get one start: recovering a million states takes minutes on this machine).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from faust.serializers import codecs
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from monitor.engine import Ruleset
from monitor.engine.driver import DictStore, Driver
from monitor.engine.stored import encode_stored, read_stored, slot_of
from monitor.events import Event
from monitor.rules import load_rules
from streams.broker import EmbeddedBroker
from tests.bench.report import write_section
from tests.integration.harness import Deployment

RULES = Path(__file__).resolve().parents[2] / "rules"
RULE = "sales-onboarding-handoff-stalled"
PARTITIONS = 4  # the harness's CXMON_TOPIC_PARTITIONS
OVERDUE = 100  # recovered states whose deadline passed while the worker was down
MEMORY_STATES = int(os.environ.get("CXMON_BENCH_MEMORY_STATES", "20000"))
SIZES = [int(x) for x in os.environ.get("CXMON_BENCH_RECOVERY_SIZES", "100000,1000000").split(",")]
RUNS = int(os.environ.get("CXMON_BENCH_RUNS", "3"))


def _deal(i: int, at: datetime) -> Event:
    """A closed deal as the simulator writes it; it opens one expectation (kickoff within 3d)."""
    return Event(
        id=f"sim-5-{i}",
        source="sales",
        type="deal.closed",
        time=at,
        subject=f"cust-{i:07d}",
        data={"deal_id": f"D-{i % 100000:05d}", "plan": "growth"},
    )


class Glue:
    """The worker's driver over a dict store: states are encoded exactly as a worker stores
    them and sends them to its changelog."""

    def __init__(self) -> None:
        self.store = DictStore()
        self.driver = Driver(Ruleset(load_rules([RULES]).rules), self.store)
        self.driver.keep_partitions(range(PARTITIONS))

    def table(self) -> dict[str, bytes]:
        return {
            slot: value for part in self.store.partitions.values() for slot, value in part.items()
        }


def changelog_record(slot: str, stored: bytes) -> tuple[bytes, bytes]:
    """Key and value bytes of the table's changelog record (Faust's json codec for the key; the
    value is the JSON the detect agent wrote)."""
    return codecs.dumps("json", slot), stored


def build(glue: Glue, count: int, at: datetime, first: int = 0) -> None:
    now = datetime.now(UTC)
    for i in range(first, first + count):
        event = _deal(i, at)
        glue.driver.apply(i % PARTITIONS, event.subject, event.ref(), [RULE], now)
        if i % 1000 == 999:
            glue.driver.commit()  # a worker commits once per fetched batch
    glue.driver.commit()


def measure_bytes(count: int) -> tuple[float, float, float]:
    """(changelog bytes, table bytes in memory, table + due index bytes) per expectation."""
    now = datetime.now(UTC)
    build(Glue(), 200, now, first=10_000_000)  # warm caches (rule compilation, pydantic)
    glue = Glue()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    build(glue, count, now)
    total = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    table = glue.table()
    assert len(table) == count
    assert all(s is not None and s["o"] == 1 for s in map(read_stored, table.values()))
    wire = sum(len(k) + len(v) for k, v in (changelog_record(s, x) for s, x in table.items()))
    # the table alone, as the memory store holds it after recovery (key decoded, value bytes)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copy = {
        codecs.loads("json", k): bytes(bytearray(v))
        for k, v in (changelog_record(s, x) for s, x in table.items())
    }
    table_only = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(copy) == count
    return wire / count, table_only / count, total / count


def templates() -> dict[bool, str]:
    """One changelog value per kind, pending (due in 3 days) or overdue (due a day ago), with
    placeholders for the partition, the event id and the customer."""
    now, marker = datetime.now(UTC), 4242424
    out = {}
    for overdue in (False, True):
        glue = Glue()
        build(glue, 1, now - timedelta(days=4) if overdue else now, first=marker)
        stored = read_stored(glue.table()[slot_of(RULE, f"cust-{marker:07d}")])
        assert stored is not None
        text = encode_stored({**stored, "p": -9}).decode()
        text = text.replace(f"sim-5-{marker}", "\x00I").replace(f"cust-{marker:07d}", "\x00C")
        out[overdue] = text.replace('"p":-9', '"p":\x00P')
    return out


async def fill_changelog(bootstrap: str, topic: str, count: int) -> float:
    """Write `count` pending states (the first OVERDUE of them overdue); seconds it took.

    aiokafka, not kafka-python: without the optional crc32c package kafka-python checksums
    record batches in pure Python, which takes minutes for a million records."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    values = templates()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=50, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for i in range(count):
            partition, customer = i % PARTITIONS, f"cust-{i:07d}"
            value = values[i < OVERDUE].replace("\x00P", str(partition))
            value = value.replace("\x00I", f"sim-5-{i}").replace("\x00C", customer)
            key = codecs.dumps("json", slot_of(RULE, customer))
            await producer.send(topic, key=key, value=value.encode(), partition=partition)
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - started


def gauge(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f'{name}{{rule="{RULE}"}}'):
                return float(line.rsplit(" ", 1)[1])
    return -1.0


def recover(deployment: Deployment, count: int, **store: str) -> tuple[float, float]:
    """(process start to ready, process start to the first sweep's gauges showing every state)."""
    with deployment.worker(
        RULES, wait=False, CXMON_CONSOLE_ALERTS="false", CXMON_LOG_LEVEL="warning", **store
    ) as worker:
        ready = worker.wait_ready(timeout_s=900)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            waiting = gauge(worker.metrics_port, "cxmon_open_expectations")
            breached = gauge(worker.metrics_port, "cxmon_open_breaches")
            if waiting == count - OVERDUE and breached == OVERDUE:
                return ready, time.monotonic() - worker.started
            time.sleep(0.2)
        raise AssertionError(
            f"gauges {waiting}/{breached}, want {count - OVERDUE}/{OVERDUE}:\n{worker.log()}"
        )


@pytest.mark.timeout(3600)
def test_bytes_per_expectation_and_recovery_time() -> None:
    wire, table, total = measure_bytes(MEMORY_STATES)
    rows = []
    for count in SIZES:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
            deployment = Deployment(broker.bootstrap, Path(tmp))
            topic = f"cxmon-test-{deployment.suffix}-cx-state-changelog"
            fill = asyncio.run(fill_changelog(broker.bootstrap, topic, count))
            runs = RUNS if count <= 100_000 else 1
            memory = [recover(deployment, count) for _ in range(runs)]
            rocksdb = {"CXMON_STORE": "rocksdb://", "CXMON_DATA_DIR": str(Path(tmp) / "rocks")}
            first = [recover(deployment, count, **rocksdb)]  # replays into its local RocksDB
            restarts = [recover(deployment, count, **rocksdb) for _ in range(runs)]
        rows.append((count, fill, "`memory://`, any start (full replay)", memory))
        rows.append((count, fill, "`rocksdb://`, first start (full replay)", first))
        rows.append((count, fill, "`rocksdb://`, restart on its data dir", restarts))
    table_rows = "\n".join(
        f"| {count:,} | {fill:.0f} s | {mode} | **{statistics.median(r for r, _ in results):.1f} s** "
        f"({', '.join(f'{r:.1f}' for r, _ in results)}) | "
        f"{statistics.median(s for _, s in results):.1f} s | "
        f"{30 / statistics.median(r for r, _ in results):.2f}x |"
        for count, fill, mode, results in rows
    )
    write_section(
        "State: bytes per pending expectation, recovery after a restart",
        f"""
Pending stalled expectations of `{RULE}` (a closed deal waiting for its kickoff), one per
customer, built with the engine and the detect agent's own table encoding.

| per expectation | bytes (mean of {MEMORY_STATES:,}) | goal |
|---|---|---|
| changelog record (JSON key + value) | **{wire:.0f}** | ≤ 500 ({500 / wire:.2f}x) |
| in memory, table entry (as the memory store holds it: key and JSON bytes) | **{table:.0f}** | ≤ 500 ({500 / table:.2f}x) |
| in memory as a worker builds it (store entry, due index and the driver's decoded-state cache, up to 200,000 states) | {total:.0f} | |

Recovery: the `cx-state` changelog topic ({PARTITIONS} partitions) filled with aiokafka in
the worker's format ({OVERDUE} of the states already overdue), then `cxmon run` (fast-start
profile) started on it: with the `memory://` store (every start replays the whole changelog),
then with `rocksdb://` (the first start replays it into local RocksDB; a restart on the same data
dir reads only what the changelog gained since). {RUNS} starts each up to 100,000 states, one
above. *Ready* is process start to
the ready file (tables recovered, group joined); *swept* is until `cxmon_open_expectations`
shows every pending state and `cxmon_open_breaches` the {OVERDUE} overdue ones (their deadlines
fired after the first sweep). Goal: ready ≤ 30 s; the last column is 30 s / median.

| states | fill time | store, start | ready (median; runs) | swept (median) | goal ratio |
|---|---|---|---|---|---|
{table_rows}

The machine is a shared virtual one, so single figures are noisy; ratios come from one run.
""",
        "make bench",
    )
    assert wire > 0 and all(r[3] for r in rows)
