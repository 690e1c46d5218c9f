"""Processes and clients for integration tests: worker subprocesses, publishing, reading topics."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from monitor.events import Event
from streams.broker import free_port
from streams.producer import EventPublisher
from tests.integration.stopping import stop_group

ROOT = Path(__file__).resolve().parents[2]
WAIVED_FEE_CHARGED = """\
  - id: waived-fee-charged
    title: Billing charged a fee that support promised to waive
    kind: contradiction
    severity: high
    owners: [support, billing]
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: invoice.charged,
           where: "then.data.fee_code == first.data.fee_code"}
    within: 30d
"""
CHARGED_MESSAGE = (
    'message: "{{ key }} was charged {{ then.data.amount }} for {{ then.data.fee_code }}"'
)


def waiver_rules(workdir: Path, *fields: str, more: str = "") -> Path:
    """A rules directory under `workdir` with the rule most worker tests alert with: billing
    charges (`invoice.charged`) a fee support promised to waive (`fee.waiver_promised`, same
    customer and `fee_code`), with `fields` (YAML lines) added to it and `more` rules after it."""
    rules = workdir / "rules"
    rules.mkdir()
    extra = "".join(f"    {line}\n" for line in fields)
    (rules / "waivers.yaml").write_text(f"version: 1\nrules:\n{WAIVED_FEE_CHARGED}{extra}{more}")
    return rules


def waiver_and_charge(
    customer: str,
    waived_at: datetime,
    *,
    after: timedelta = timedelta(hours=1),
    fee: str = "late_fee",
    amount: int = 25,
) -> tuple[Event, Event]:
    """The pair `waiver_rules` and the shipped pack alert on: support promises `customer` at
    `waived_at` to waive `fee`, and billing charges that fee `after` that."""
    waiver = Event(
        id=f"w-{customer}",
        source="support",
        type="fee.waiver_promised",
        time=waived_at,
        subject=customer,
        data={"fee_code": fee},
    )
    charge = Event(
        id=f"c-{customer}",
        source="billing",
        type="invoice.charged",
        time=waived_at + after,
        subject=customer,
        data={"fee_code": fee, "amount": amount},
    )
    return waiver, charge


@dataclass
class WorkerProcess:
    """A `cxmon run` subprocess in its own process group."""

    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    ready_file: Path
    started: float

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Seconds until the worker reported ready; raises with the log if it did not."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                return time.monotonic() - self.started
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout_s}s:\n{self.log()}")

    def log(self) -> str:
        """What the worker printed so far."""
        return self.log_path.read_text(errors="replace")[-20000:]

    def scrape(self) -> str:
        """Its /metrics page."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Stop the process group; SIGKILL if it does not exit in time."""
        stop_group(self.process, sig, timeout_s)


@contextmanager
def cxmon_process(
    command: str, env: dict[str, str], port: int, ready: Path, log_path: Path, *, wait: bool = True
) -> Iterator[WorkerProcess]:
    """`cxmon <command>` (run, notify) in a process group of its own, serving on `port`: wait
    until it wrote `ready` (unless `wait` is false), and always stop it."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", command],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = WorkerProcess(process, log_path, port, ready, time.monotonic())
    try:
        if wait:
            running.wait_ready()
        yield running
    finally:
        running.stop()


@dataclass
class Deployment:
    """Unique topic names and an app id for one test, on the shared broker."""

    bootstrap: str
    workdir: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def topics(self) -> dict[str, str]:
        """Topic names by role."""
        return {
            "events": f"cx.events.{self.suffix}",
            "keyed": f"cx.events.keyed.{self.suffix}",
            "alerts": f"cx.alerts.{self.suffix}",
            "dlq": f"cx.events.dlq.{self.suffix}",
        }

    def env(self, rules: Path, **extra: str) -> dict[str, str]:
        """The worker's environment."""
        topics = self.topics
        return {
            **os.environ,
            "CXMON_BOOTSTRAP_SERVERS": self.bootstrap,
            "CXMON_APP_ID": f"cxmon-test-{self.suffix}",
            "CXMON_TOPIC_EVENTS": topics["events"],
            "CXMON_TOPIC_KEYED": topics["keyed"],
            "CXMON_TOPIC_ALERTS": topics["alerts"],
            "CXMON_TOPIC_DLQ": topics["dlq"],
            "CXMON_TOPIC_PARTITIONS": "4",
            "CXMON_PROFILE": "fast-start",
            "CXMON_RULES_PATH": str(rules),
            # No source mappings unless a test gives some: the shipped ones read fixed topic
            # names, which tests sharing the broker must not share.
            "CXMON_SOURCES_PATH": str(self.workdir / "no-sources"),
            "CXMON_DATA_DIR": str(self.workdir / f"data-{self.suffix}"),
            "CXMON_SWEEP_INTERVAL_S": "0.5",
            "CXMON_CONSOLE_ALERTS": "true",
            "CXMON_PROCESSES": "1",  # a test's worker is one process (test_processes.py runs more)
            **extra,
        }

    @contextmanager
    def worker(self, rules: Path, *, wait: bool = True, **extra: str) -> Iterator[WorkerProcess]:
        """Start a worker, wait until ready (unless `wait` is false), and always stop it."""
        port = free_port()
        name = f"worker-{self.suffix}-{port}"
        ready = self.workdir / f"{name}.ready"
        log_path = self.workdir / f"{name}.log"
        env = self.env(
            rules,
            CXMON_METRICS_PORT=str(port),
            CXMON_READY_FILE=str(ready),
            # RocksDB: one owner per dir, unless the caller restarts a worker on its own dir
            **{"CXMON_DATA_DIR": str(self.workdir / f"data-{name}"), **extra},
        )
        with cxmon_process("run", env, port, ready, log_path, wait=wait) as worker:
            yield worker

    def publisher(self, *, binary: bool = False) -> EventPublisher:
        """A kafka-python producer for the events topic."""
        return EventPublisher(self.bootstrap, self.topics["events"], binary=binary)

    def read(
        self, role: str, *, expect: int, timeout_s: float = 30.0, quiet_s: float = 3.0
    ) -> list[Any]:
        """Read records from a topic until `expect` arrived, then for `quiet_s` more.

        The quiet period is how a test proves that no *extra* record follows; it is bounded
        by the deadline and ends early only on failure.
        """
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            consumer_timeout_ms=200,
        )
        try:
            topic = self.topics[role]
            partitions = _partitions(consumer, topic, timeout_s)
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            consumer.seek_to_beginning()
            records: list[Any] = []
            deadline = time.monotonic() + timeout_s
            quiet_until: float | None = None
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(batch)
                if len(records) >= expect and quiet_until is None:
                    quiet_until = time.monotonic() + quiet_s
                if quiet_until is not None and time.monotonic() >= quiet_until:
                    break
            return records
        finally:
            consumer.close()

    def alerts(
        self, *, expect: int, timeout_s: float = 30.0, quiet_s: float = 3.0
    ) -> list[dict[str, Any]]:
        """Alerts from the alerts topic, as dicts."""
        records = self.read("alerts", expect=expect, timeout_s=timeout_s, quiet_s=quiet_s)
        return [json.loads(r.value) for r in records]


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive free ports on 127.0.0.1 (the demo serves its worker on
    one port and its notifier on the next; a lone free port can have a taken neighbour, as it did
    when two test processes ran side by side)."""
    for _ in range(200):
        first = free_port()
        probes = []
        try:
            for port in range(first, first + count):
                probe = socket.socket()
                probes.append(probe)
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return first
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def read_until(
    bootstrap: str, topic: str, done: Callable[[list[Any]], bool], *, timeout_s: float = 20
) -> list[Any]:
    """Records of any topic from its start (assigned partitions, no group), read until `done`
    holds for them or the time is up; the caller checks which."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        deadline = time.monotonic() + timeout_s
        while not consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
            time.sleep(0.1)
        consumer.assign(
            [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        )
        consumer.seek_to_beginning()
        records: list[Any] = []
        while not done(records) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topic: str, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = consumer.partitions_for_topic(topic)
        if found:
            return sorted(found)
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} does not exist after {timeout_s}s")


def publish(deployment: Deployment, *events: Event, binary: bool = False) -> None:
    """Publish events and wait for the broker's acknowledgement."""
    with deployment.publisher(binary=binary) as out:
        out.send_all(events)
