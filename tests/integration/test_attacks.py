"""Records, rules and templates an attack used to lose alerts or freeze a worker with, through one
real worker: each is refused or contained, and the valid events around them still alert.

One worker start covers them all (issue 20, items 1-5 and 7):
- a 2 MB record among valid events on one partition (the dead-letter write failed and took the
  batch with it): dead-lettered cut to fit, with its original size in a header;
- a binary-mode event with a 600 KB `ce_subject` and a 24-byte body: refused, headers count;
- event types of 200 characters (one metric series each, unbounded in length) and of 100 KB;
- an event with a 32,000-item list (a `filter` over it froze a worker for 75 s);
- a message template that builds 64 million values (MemoryError after 87 s);
- a hot reload with a quadratic CEL condition, and one with a YAML alias bomb.
"""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from monitor.alerts.model import Alert
from monitor.alerts.render import render
from monitor.events import Event
from monitor.events.codec import encode
from tests.integration.harness import CHARGED_MESSAGE, Deployment, WorkerProcess, waiver_rules

pytestmark = pytest.mark.integration

CUSTOMERS = 6
BOMB = """\
  - id: bomb
    title: A message that builds too much
    kind: contradiction
    severity: low
    owners: [support, billing]
    first: {source: support, type: bomb.first}
    then: {source: billing, type: bomb.then}
    within: 30d
    message: "{{ [[range(1000)|list] * 8000] * 8000 }}"
"""
QUADRATIC = textwrap.dedent(
    """\
    version: 1
    rules:
      - id: quadratic
        title: A filter over an event list
        kind: contradiction
        severity: low
        owners: [support, billing]
        first: {source: support, type: fee.waiver_promised,
                where: "first.data.items.filter(i, i == 1).size() < 0"}
        then: {source: billing, type: invoice.charged}
        within: 1d
    """
)
ALIAS_BOMB = "version: 1\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 8)
)


def event(n: int, source: str, type_: str, subject: str, at: datetime, **data: object) -> Event:
    return Event(
        id=f"{type_[:40]}-{n}", source=source, type=type_, time=at, subject=subject, data=data
    )


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def wait_for_log(worker: WorkerProcess, text: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in worker.log():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{worker.log()}"
        time.sleep(0.1)


def test_hostile_records_rules_and_templates_cost_nothing_but_themselves(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = waiver_rules(
        tmp_path, "resolve_on: {source: billing, type: refund.issued}", CHARGED_MESSAGE, more=BOMB
    )
    now = datetime.now(UTC).replace(microsecond=0)
    at = now - timedelta(hours=2)
    customers = [f"c{n}" for n in range(CUSTOMERS)]
    waivers = [
        event(n, "support", "fee.waiver_promised", c, at, fee_code="late_fee")
        for n, c in enumerate(customers)
    ]
    charges = [
        event(n, "billing", "invoice.charged", c, at + timedelta(minutes=5), fee_code="late_fee")
        for n, c in enumerate(customers)
    ]
    refund = event(0, "billing", "refund.issued", "c0", at + timedelta(minutes=10))
    bombs = [
        event(0, "support", "bomb.first", "b0", at),
        event(0, "billing", "bomb.then", "b0", at + timedelta(minutes=1)),
    ]
    long_types = [event(n, "support", "t" * 200, "c9", at) for n in range(20)]
    huge_types = [event(n, "support", "t" * 100_000, "c9", at) for n in range(3)]
    long_list = event(0, "support", "fee.waiver_promised", "c8", at, items=[1] * 32_000)
    ce_time = at.isoformat().replace("+00:00", "Z").encode()
    wide_subject = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"wide-1"),
        ("ce_source", b"billing"),
        ("ce_type", b"invoice.charged"),
        ("ce_time", ce_time),
        ("ce_subject", b"s" * 600_000),
    ]
    two_mb = b"not json " * (2 * 1024 * 1024 // 9)

    with deployment.worker(rules, CXMON_RELOAD_INTERVAL_S="0") as worker:
        producer = KafkaProducer(
            bootstrap_servers=deployment.bootstrap, max_request_size=4 * 1024 * 1024, acks=1
        )
        topic = deployment.topics["events"]
        try:

            def send(*events: Event) -> None:
                for one in events:
                    producer.send(topic, value=encode(one), key=one.subject.encode(), partition=0)

            send(*waivers, bombs[0])
            producer.send(topic, value=two_mb, partition=0)
            producer.send(
                topic, value=b'{"fee_code":"late_fee"}', headers=wide_subject, partition=0
            )
            send(*long_types, *huge_types, long_list, *charges, bombs[1])
            producer.flush()
            send(refund)
            producer.flush()
        finally:
            producer.close()
        dead = deployment.read("dlq", expect=6, timeout_s=30, quiet_s=1)
        alerts = deployment.alerts(expect=CUSTOMERS + 2, timeout_s=30, quiet_s=1)
        metrics = worker.scrape()

        # A quadratic CEL condition and an alias bomb are refused as hot reloads, at once.
        (rules / "quadratic.yaml").write_text(QUADRATIC)
        os.kill(worker.process.pid, signal.SIGHUP)
        wait_for_log(worker, "CEL_COST")
        (rules / "quadratic.yaml").unlink()
        (rules / "laughs.yaml").write_text(ALIAS_BOMB)
        started = time.monotonic()
        os.kill(worker.process.pid, signal.SIGHUP)
        wait_for_log(worker, "YAML_ALIASES")
        refused_in = time.monotonic() - started
        with urllib.request.urlopen(
            f"http://127.0.0.1:{worker.metrics_port}/healthz", timeout=2
        ) as health:
            assert health.status == 200
        reloads = sample(worker.scrape(), "cxmon_rule_reloads_total", outcome="failure")
        assert worker.process.poll() is None, worker.log()

    # every valid event still alerts: the six charges, the refund, and the bomb (with its title)
    fired = sorted((a["rule_id"], a["key"], a["status"]) for a in alerts)
    assert fired == sorted(
        [("waived-fee-charged", c, "firing") for c in customers]
        + [("waived-fee-charged", "c0", "resolved"), ("bomb", "b0", "firing")]
    ), worker.log()
    [bomb] = [a for a in alerts if a["rule_id"] == "bomb"]
    assert bomb["message"] == "A message that builds too much"
    assert sample(metrics, "cxmon_message_render_failures_total", rule="bomb") == 1

    # a resolution names when the alert it resolves was raised, not when it resolved
    firing = Alert.model_validate(
        next(a for a in alerts if a["key"] == "c0" and a["status"] == "firing")
    )
    resolved = Alert.model_validate(next(a for a in alerts if a["status"] == "resolved"))
    assert resolved.raised_at == firing.event_time != resolved.event_time
    assert f"raised {firing.event_time:%Y-%m-%d %H:%M}" in render([resolved], "text")[0].body

    # each hostile record is on the dead-letter topic once, none larger than the producer sends
    reasons = sorted(dict(r.headers)["cx_reject_reason"].decode() for r in dead)
    assert reasons == ["too_large"] * 6, [dict(r.headers)["cx_reject_detail"] for r in dead]
    assert all(len(r.value) + sum(len(v) for _, v in r.headers) < 1_000_000 for r in dead)
    [cut] = [r for r in dead if dict(r.headers).get("cx_truncated")]
    assert dict(cut.headers)["cx_original_bytes"] == str(len(two_mb)).encode()
    assert two_mb.startswith(cut.value)
    details = b" ".join(dict(r.headers)["cx_reject_detail"] for r in dead)
    assert b"with its headers" in details and b"max_attribute_chars" in details
    assert b"max_data_items" in details

    # long event types share one series; the scrape does not grow with what producers write
    assert sample(metrics, "cxmon_events_consumed_total", department="support", type="other") == 20
    assert "t" * 101 not in metrics and len(metrics) < 100_000
    assert reloads == 2 and refused_in < 5, worker.log()
    assert json.dumps(alerts)  # alerts are plain JSON
