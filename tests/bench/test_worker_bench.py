"""Worker start-up, and end-to-end worker throughput beside the raw consume ceiling, same topic."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from monitor.simulator import Simulator
from streams.broker import EmbeddedBroker
from streams.producer import EventPublisher
from tests.bench.report import run_peer, write_section
from tests.integration.harness import Deployment

RULES = Path(__file__).resolve().parents[2] / "rules"
EVENTS = int(os.environ.get("CXMON_BENCH_EVENTS", "50000"))  # override for quick runs
PARTITIONS = 8
RUNS = int(os.environ.get("CXMON_BENCH_RUNS", "3"))


def publish_traffic(bootstrap: str, topic: str) -> int:
    now = datetime.now(UTC)
    events = Simulator(seed=5, customers=20_000).backfill(now - timedelta(days=2), now, 40_000)
    events = events[:EVENTS]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    with EventPublisher(bootstrap, topic) as out:
        return out.send_all(events)


async def raw_ceiling(bootstrap: str, topic: str, count: int) -> float:
    """A plain aiokafka consumer group with json.loads: events/s from first record to last."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"ceiling-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    await consumer.start()
    try:
        seen, started = 0, 0.0
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batches.values():
                if not started:
                    started = time.perf_counter()
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def keyed_backlog(bootstrap: str, group: str, topic: str) -> int:
    """Records on the keyed topic the worker has not committed yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        ends = consumer.end_offsets(parts)
        committed = admin.list_group_offsets(group)[group]
        return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in parts)
    finally:
        consumer.close()
        admin.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its children that exited or still run."""
    total = 0.0
    for target in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{target}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class WorkerRun(NamedTuple):
    """One fresh worker over the bench topic."""

    startup: float  # seconds from process start to the ready file
    rate: float  # events/s from its first ingested batch to its last, as the peers are timed
    cpu_us: float  # its CPU time per event over the same span
    end_to_end: float  # events/s from ready until every keyed record it produced is committed
    whole_cpu_us: float  # its CPU time per event over that whole span


def worker_rate(deployment: Deployment, topic: str, **extra: str) -> WorkerRun:
    """Time a worker over the bench topic the way the peers time themselves: from the first
    events it has ingested to the last (ingested: applied, and their alerts delivered), counting
    only the events ingested in between; its CPU time per event over the same span. Also end to
    end, from ready until every event is ingested and every keyed record it produced is
    committed by the detect agent, which adds the consumer group's start, up to one commit
    interval and the sweep that follows a backlog. With several processes, their CPU times and
    their metrics are summed."""
    processes = int(extra.get("CXMON_PROCESSES", "1"))
    # The worker's topics get as many partitions as the input topic, as the README advises, so
    # events keyed by customer are applied where they arrive instead of crossing the keyed topic.
    with deployment.worker(
        RULES,
        wait=True,  # given, so the type checker knows `extra` (all str) cannot fill the bool
        CXMON_TOPIC_EVENTS=topic,
        CXMON_TOPIC_PARTITIONS=str(PARTITIONS),
        CXMON_CONSOLE_ALERTS="false",
        CXMON_LOG_LEVEL="warning",
        **extra,
    ) as worker:
        ready = worker.wait_ready()
        pid, ports = worker.process.pid, range(worker.metrics_port, worker.metrics_port + processes)
        started, cpu_before = time.perf_counter(), cpu_seconds(pid)
        first: tuple[float, float, float] | None = None  # (time, events ingested, CPU seconds)
        deadline = time.monotonic() + 900
        while True:
            assert time.monotonic() < deadline, f"worker did not finish:\n{worker.log()}"
            consumed, at = sum(_consumed(port) for port in ports), time.perf_counter()
            if consumed and first is None:
                first = (at, consumed, cpu_seconds(pid))
            if consumed >= EVENTS:
                last = (at, consumed, cpu_seconds(pid))
                break
            time.sleep(0.02)  # a scrape of two counter families: about a millisecond's work
        group = f"cxmon-test-{deployment.suffix}"
        while keyed_backlog(deployment.bootstrap, group, deployment.topics["keyed"]):
            assert time.monotonic() < deadline, f"worker did not commit:\n{worker.log()}"
            time.sleep(0.5)  # each look opens two clients on the broker
        elapsed, whole_cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu_before
    assert first is not None
    counted = EVENTS - first[1]
    if counted <= 0 or last[0] <= first[0]:  # all of it in the first look: a tiny run
        counted, first = EVENTS, (started, 0, cpu_before)
    return WorkerRun(
        startup=ready,
        rate=counted / (last[0] - first[0]),
        cpu_us=(last[2] - first[2]) / counted * 1e6,
        end_to_end=EVENTS / elapsed,
        whole_cpu_us=whole_cpu / EVENTS * 1e6,
    )


def _consumed(port: int) -> float:
    """Events the worker on this metrics port has ingested or rejected so far."""
    import urllib.request

    families = "name[]=cxmon_events_consumed_total&name[]=cxmon_events_rejected_total"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{families}") as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("cxmon_events_consumed_total{", "cxmon_events_rejected_total{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


PER_RECORD = os.environ.get("CXMON_BENCH_PER_RECORD") == "1"  # also time Faust's own consumer


@pytest.mark.timeout(2400)
def test_worker_versus_raw_consume_ceiling() -> None:
    """About 4 minutes on a quiet 2-core machine (3 runs over 50k events); the per-record row
    (CXMON_BENCH_PER_RECORD=1) adds several minutes a run."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        topic = f"bench.events.{uuid.uuid4().hex[:6]}"
        count = publish_traffic(broker.bootstrap, topic)
        ceilings, floors, batched = [], [], []
        stock: list[WorkerRun] = []
        workers: list[WorkerRun] = []
        for run in range(RUNS):
            ceilings.append(asyncio.run(raw_ceiling(broker.bootstrap, topic, count)))
            command = [sys.executable, "-m", "tests.bench.peer_faust", broker.bootstrap, topic]
            out = Path(tmp) / f"faust{run}.json"
            floors.append(run_peer([*command, str(count), str(out)], out)["rate"])
            out = Path(tmp) / f"faust-batch{run}.json"
            batched.append(
                run_peer([*command, str(count), str(out), "--batch-delivery"], out)["rate"]
            )
            if PER_RECORD:
                deployment = Deployment(broker.bootstrap, Path(tmp) / f"run{run}")
                deployment.workdir.mkdir()
                stock.append(worker_rate(deployment, topic, CXMON_BATCH_DELIVERY="false"))
            deployment = Deployment(broker.bootstrap, Path(tmp) / f"run{run}b")
            deployment.workdir.mkdir()
            workers.append(worker_rate(deployment, topic))
    median = statistics.median
    ceiling, worker = median(ceilings), median(w.rate for w in workers)
    floor, batch = statistics.median(floors), statistics.median(batched)

    def runs(figures: Iterable[float]) -> str:
        return ", ".join(f"{x:,.0f}" for x in figures)

    def row(name: str, timed: list[WorkerRun]) -> str:
        rates, whole = [w.rate for w in timed], [w.end_to_end for w in timed]
        cpu, whole_cpu = [w.cpu_us for w in timed], [w.whole_cpu_us for w in timed]
        return (
            f"| {name} | {median(rates):,.0f} | {runs(rates)} | {median(cpu):,.0f} ({runs(cpu)}) "
            f"| {median(whole):,.0f} ({runs(whole)}) | {median(whole_cpu):,.0f} |\n"
        )

    per_record = (
        row("cxmon worker, Faust's consumer (`CXMON_BATCH_DELIVERY=false`)", stock) if stock else ""
    )
    startups = [w.startup for w in workers]
    write_section(
        "Worker end to end vs raw consume ceiling",
        f"""
{count:,} simulated CloudEvents (structured JSON) on one {PARTITIONS}-partition topic of the
embedded broker; each run measures, one after the other on the same topic, the ceiling, a bare
Faust agent (both ways) and then a fresh worker. Ceiling: a plain aiokafka consumer
group with `json.loads`.
Bare Faust agent (`tests/bench/peer_faust.py`): one agent on the topic that parses each event's
JSON and counts it per customer in a dict, with the worker's Faust settings, from its first event
to its last: what a Faust application pays per event before it does any work; once with Faust's
own consumer, once with the worker's (`streams/faust_compat.py`: one message per fetched
partition batch). Worker: `cxmon run` with the shipped pack (fast-start profile, its topics
with {PARTITIONS} partitions like the input, so events keyed by customer are applied where they
arrive), timed like the others from the first events it has ingested (applied, their alerts
delivered) to the last, counting the events ingested in between (its metrics, read every
20 ms); its CPU time (user + system, from /proc) over the same span per event. End to end: from
ready until every event is ingested and every re-keyed record is committed by the detect agent,
which adds the group's first fetch, up to one commit interval and the sweep that follows a
backlog (the states whose entries the newest events age out are rewritten); CPU over that
whole span. Two processes, the peer's three rules and quixstreams: the peer section. Median of
{RUNS} runs.

| | events/s (median) | runs |
|---|---|---|
| raw aiokafka ceiling | {ceiling:,.0f} | {runs(ceilings)} |
| bare Faust agent | {floor:,.0f} | {runs(floors)} |
| bare Faust agent, batch delivery | {batch:,.0f} | {runs(batched)} |

| worker | events/s, first to last ingested (median) | runs | CPU µs/event (runs; goal ≤ 60) | end to end, events/s (runs) | CPU µs/event, end to end |
|---|---|---|---|---|---|
{per_record}{row("cxmon worker (as shipped)", workers)}
{"" if stock else "Faust's per-record delivery is timed with `CXMON_BENCH_PER_RECORD=1`."}

Ratio worker / ceiling: **{worker / ceiling:.3f}x** (long-term goal 0.5x). Bare Faust agent /
ceiling: {floor / ceiling:.3f}x; batch delivery / Faust's consumer (bare agent):
{batch / floor:.2f}x. Worker / bare Faust agent with batch delivery: {worker / batch:.2f}x.

Worker start-up to ready (process start to the ready file): median
**{median(startups):.2f} s** ({", ".join(f"{x:.2f}" for x in startups)}); goal ≤ 5 s.
""",
        "make bench",
    )
    assert worker > 0 and ceiling > 0 and floor > 0 and batch > 0
