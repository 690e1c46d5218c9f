"""Backtests from a topic's retained history: `cxmon replay --topic --since/--until` and `cxmon
export`, on the embedded broker, with record timestamps days apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from monitor.events.codec import encode, encode_binary
from tests.integration.harness import Deployment, waiver_and_charge

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


def _cxmon(deployment: Deployment, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CXMON_BOOTSTRAP_SERVERS": deployment.bootstrap}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def history(deployment: Deployment) -> str:
    """A 3-partition topic: one conflict recorded 3 days ago, one 1 hour ago (binary mode), and
    the first one's charge delivered twice."""
    topic = deployment.topics["events"]
    admin = KafkaAdminClient(bootstrap_servers=deployment.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, linger_ms=5)
    old = waiver_and_charge("c-old", NOW - timedelta(days=3), after=timedelta(minutes=5))
    for event in [*old, old[1]]:
        producer.send(
            topic,
            value=encode(event),
            key=event.subject.encode(),
            timestamp_ms=int(event.time.timestamp() * 1000),
        )
    for event in waiver_and_charge("c-new", NOW - timedelta(hours=1), after=timedelta(minutes=5)):
        headers, value = encode_binary(event)
        producer.send(
            topic,
            value=value,
            headers=headers,
            key=event.subject.encode(),
            timestamp_ms=int(event.time.timestamp() * 1000),
        )
    producer.flush()
    producer.close()
    return topic


def test_replay_since_reads_only_the_records_after_it(deployment: Deployment, history: str) -> None:
    done = _cxmon(
        deployment, history, "replay", "--topic", history, "--since", "2d", "--format", "jsonl"
    )
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["rule_id"], a["key"]) for a in alerts] == [("billing-charges-waived-fee", "c-new")]
    assert "replay: 2 events, 0 rejected, 1 alert(s)" in done.stderr


def test_replay_until_stops_before_later_records_and_counts_the_duplicate(
    deployment: Deployment, history: str
) -> None:
    until = (NOW - timedelta(days=1)).isoformat()
    done = _cxmon(
        deployment, history, "replay", "--topic", history, "--since", "7d", "--until", until,
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["rule_id"], a["key"]) for a in alerts] == [("billing-charges-waived-fee", "c-old")]
    assert "3 events, 0 rejected, 1 alert(s); 1 duplicate(s) ignored" in done.stderr


def test_export_writes_the_range_as_replayable_json_lines(
    deployment: Deployment, history: str, tmp_path: Path
) -> None:
    out = tmp_path / "week.jsonl"
    done = _cxmon(
        deployment, history, "export", "--topic", history, "--since", "7d", "-o", str(out)
    )
    assert done.returncode == 0, done.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    assert {json.loads(line)["subject"] for line in lines} == {"c-old", "c-new"}  # binary too
    replayed = _cxmon(deployment, history, "replay", str(out), "--format", "jsonl")
    keys = sorted(json.loads(line)["key"] for line in replayed.stdout.splitlines())
    assert keys == ["c-new", "c-old"]


def test_a_topic_that_does_not_exist_is_an_error_not_a_hang(deployment: Deployment) -> None:
    done = _cxmon(deployment, "x", "export", "--topic", "cx.nothing.here", "--since", "1d")
    assert done.returncode == 1
    assert "does not exist" in done.stderr
