"""The notifier through real processes: alerts on a real broker, delivered to real local HTTP and
SMTP receivers (webhook, Apprise json://, Apprise mailto://), with silences and the DLQ."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from kafka import KafkaProducer
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.alerts.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from monitor.alerts.model import Alert, EvidenceItem
from streams.broker import free_port
from tests.integration.harness import ROOT, Deployment, WorkerProcess, cxmon_process, read_until

pytestmark = pytest.mark.integration
SECRET = "s3cret-signing-key-for-tests"  # noqa: S105 - a test key for a local receiver
SHORT_SECRET = "k3y9z"  # noqa: S105 - a token in a local receiver's URL


def alert(
    n: int, rule: str, owners: list[str], severity: str = "medium", status: str = "firing"
) -> Alert:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    return Alert(
        fingerprint=f"fp-{rule}-{n}",
        status=status,  # type: ignore[arg-type]
        rule_id=rule,
        kind="contradiction",
        title=f"Title of {rule}",
        severity=severity,
        owners=owners,
        from_department=owners[0],
        to_department=owners[-1],
        key=f"cust-{n}",
        message=f"cust-{n} was let down ({rule})",
        event_time=at,
        detected_at=at + timedelta(seconds=1),
        evidence=[
            EvidenceItem(
                time=at,
                department=owners[0],
                source=owners[0],
                type="x.happened",
                id=f"e{n}",
                slot="first",
            )
        ],
    )


class Recorder:
    """A handler for pytest-httpserver: answers with `fail` for the first N requests, then 200."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.calls = 0
        self.accepted: list[tuple[dict[str, str], bytes]] = []

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        if self.always_fail or self.calls <= self.fail_first:
            return Response("busy", status=500)
        self.accepted.append((dict(request.headers), request.get_data()))
        return Response("ok", status=200)


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def one_webhook(
    httpserver: HTTPServer, name: str, handler: Recorder, *, group_by: str | None = None
) -> str:
    """Alerting with one receiver, `name`: a webhook on `httpserver` at /<name>, answered by
    `handler`, that gets every alert at once (no group wait or interval)."""
    httpserver.expect_request(f"/{name}", method="POST").respond_with_handler(handler)
    grouped = f"\n  group_by: {group_by}" if group_by else ""
    return f"""
version: 1
receivers:
  - name: {name}
    channels: [{{url: "{httpserver.url_for(f"/{name}")}", type: webhook}}]
route:
  receiver: {name}{grouped}
  group_wait: 0s
  group_interval: 0s
"""


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@contextmanager
def notifier(
    deployment: Deployment, alerting: str, **extra: str
) -> Iterator[tuple[WorkerProcess, dict[str, str]]]:
    """A `cxmon notify` subprocess with short retries, stopped by its process group."""
    workdir = deployment.workdir
    config = workdir / f"alerting-{deployment.suffix}.yaml"
    config.write_text(alerting, encoding="utf-8")
    port = free_port()
    ready = workdir / f"notifier-{port}.ready"
    log_path = workdir / f"notifier-{port}.log"
    env = {
        **deployment.env(workdir),
        "CXMON_ALERTING_PATH": str(config),
        "CXMON_TOPIC_ALERTS_DLQ": f"cx.alerts.dlq.{deployment.suffix}",
        "CXMON_TOPIC_SILENCES": f"cx.silences.{deployment.suffix}",
        "CXMON_TOPIC_NOTIFIED": f"cx.alerts.notified.{deployment.suffix}",
        "CXMON_NOTIFIER_METRICS_PORT": str(port),
        "CXMON_NOTIFIER_READY_FILE": str(ready),
        "CXMON_NOTIFY_RETRY_INITIAL_S": "0.2",
        "CXMON_NOTIFY_RETRY_MAX_S": "0.5",
        "CXMON_NOTIFY_MAX_AGE_S": "30",
        "CX_TEST_WEBHOOK_SECRET": SECRET,
        **extra,
    }
    with cxmon_process("notify", env, port, ready, log_path) as proc:
        yield proc, env
    # Faust's per-app directory belongs under CXMON_DATA_DIR, not where the notifier ran from.
    strays = list(ROOT.glob(f"*{deployment.suffix}*-data"))
    assert not strays, f"the notifier wrote into its working directory: {strays}"


def produce(deployment: Deployment, *alerts: Alert) -> None:
    """Write alerts to the alerts topic, all on partition 0 so their order is defined."""
    producer = KafkaProducer(bootstrap_servers=deployment.bootstrap, acks=1)
    try:
        for a in alerts:
            producer.send(
                deployment.topics["alerts"],
                key=a.fingerprint.encode(),
                value=a.to_bytes(),
                partition=0,
            )
        producer.flush()
    finally:
        producer.close()


def wait_for(
    condition: Callable[[], bool], what: str, proc: WorkerProcess, timeout_s: float = 20
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{proc.log()}")


def metric(proc: WorkerProcess, name: str) -> float:
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{proc.metrics_port}/metrics", timeout=5)
        .read()
        .decode()
    )
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def fingerprints(recorder: Recorder) -> list[str]:
    return [a["fingerprint"] for _, body in recorder.accepted for a in json.loads(body)["alerts"]]


def test_routes_and_groups_reach_the_expected_receivers_only(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    billing, onboarding = Recorder(), Recorder()
    httpserver.expect_request("/billing", method="POST").respond_with_handler(billing)
    httpserver.expect_request("/onboarding", method="POST").respond_with_handler(onboarding)
    base = httpserver.url_for("/").rstrip("/").removeprefix("http://")
    with smtp_server() as (mailbox, smtp_port):
        alerting = f"""
version: 1
receivers:
  - name: console
    channels: [console://]
  - name: billing
    channels:
      - {{url: "http://{base}/billing", type: webhook, secret: "${{CX_TEST_WEBHOOK_SECRET}}"}}
  - name: onboarding
    channels: ["json://{base}/onboarding"]
  - name: leads
    channels: ["mailto://{base.split(":")[0]}:{smtp_port}?from=cx@example.com&to=leads@example.com"]
route:
  receiver: console
  group_by: [rule]
  group_wait: 1s
  group_interval: 1s
  routes:
    - match: {{owners: billing}}
      receiver: billing
    - match: {{owners: [onboarding, sales]}}
      receiver: onboarding
      continue: true
    - match: {{severity: critical}}
      receiver: leads
"""
        with notifier(deployment, alerting) as (proc, _):
            b1, b2 = (
                alert(1, "billing-rule", ["support", "billing"]),
                alert(2, "billing-rule", ["support", "billing"]),
            )
            o1 = alert(3, "handoff-rule", ["sales", "onboarding"], severity="critical")
            other = alert(4, "marketing-rule", ["marketing", "support"])
            produce(deployment, b1, b2, o1, other)
            wait_for(
                lambda: (
                    len(fingerprints(billing)) >= 2
                    and bool(onboarding.accepted)
                    and bool(mailbox.messages)
                ),
                "deliveries",
                proc,
            )
            produce(deployment, b1)  # a restarted worker writing the same alert again
            wait_for(
                lambda: f"{b1.fingerprint} (firing) was handled before" in proc.log(),
                "the duplicate skipped",
                proc,
            )
            wait_for(lambda: "[console]" in proc.log(), "the console line", proc)
            deliveries = metric(proc, "cxmon_alert_deliveries_total")
    # billing: one grouped, signed notification with both alerts, and the duplicate not again
    assert fingerprints(billing) == [b1.fingerprint, b2.fingerprint], proc.log()
    headers, body = billing.accepted[0]
    assert verify_signature(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    assert not verify_signature("wrong", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    # onboarding (Apprise json://) and, via continue, leads (Apprise mailto://) got the critical one
    assert len(onboarding.accepted) == 1
    sent = json.loads(onboarding.accepted[0][1])
    assert "handoff-rule" in sent["message"] and "cust-3" in sent["message"]
    assert [m["To"] for m in mailbox.messages] == ["leads@example.com"]
    assert "Title of handoff-rule" in mailbox.messages[0]["Subject"]
    console = [line for line in proc.log().splitlines() if line.startswith("[console]")]
    assert len(console) == 1 and "marketing-rule" in console[0], proc.log()
    assert deliveries == 4  # billing 1, onboarding 1, leads 1, console 1


def test_outage_is_retried_in_order_and_a_dead_receiver_dead_letters(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    flaky, dead = Recorder(fail_first=6), Recorder(always_fail=True)
    httpserver.expect_request("/flaky", method="POST").respond_with_handler(flaky)
    # the dead receiver's URL holds a 5-character secret: it must not show in any log line or
    # dead-letter reason (short secrets were ignored by the redactor)
    httpserver.expect_request(f"/dead/{SHORT_SECRET}", method="POST").respond_with_handler(dead)
    alerting = f"""
version: 1
receivers:
  - name: flaky
    channels: [{{url: "{httpserver.url_for("/flaky")}", type: webhook}}]
  - name: dead
    channels: [{{url: "{httpserver.url_for("/dead")}/${{CX_TEST_SHORT}}", type: webhook}}]
route:
  receiver: flaky
  group_by: [rule]
  group_wait: 0s
  group_interval: 0s
  routes:
    - match: {{rule: doomed}}
      receiver: dead
"""
    batch = [alert(n, "steady", ["sales", "onboarding"]) for n in range(6)]
    doomed = alert(99, "doomed", ["billing", "support"])
    with notifier(deployment, alerting, CXMON_NOTIFY_MAX_AGE_S="3", CX_TEST_SHORT=SHORT_SECRET) as (
        proc,
        env,
    ):
        produce(deployment, *batch[:3])
        wait_for(lambda: flaky.calls >= 2, "the outage to begin", proc)
        produce(deployment, *batch[3:], doomed)
        wait_for(lambda: len(fingerprints(flaky)) >= len(batch), "recovery", proc, timeout_s=30)
        dlq = read_topic(deployment, env["CXMON_TOPIC_ALERTS_DLQ"], expect=1)
        retries = metric(proc, "cxmon_alert_delivery_retries_total")
        dead_lettered = metric(proc, "cxmon_alerts_dead_lettered_total")
    assert fingerprints(flaky) == [a.fingerprint for a in batch], proc.log()  # each once, in order
    assert flaky.calls > 6 and retries >= 6
    assert [r.key.decode() for r in dlq] == [doomed.fingerprint]
    headers = dict(dlq[0].headers)
    assert b"answered 500" in headers["cx_dead_letter_reason"] and headers["cx_receiver"] == b"dead"
    assert json.loads(dlq[0].value)["fingerprint"] == doomed.fingerprint
    assert dead_lettered == 1 and len(dead.accepted) == 0
    assert dead.calls >= 1  # the secret did reach the receiver, in the URL
    log = proc.log()
    assert SHORT_SECRET not in log and SHORT_SECRET.encode() not in headers["cx_dead_letter_reason"]
    assert "/dead/***" in log, log
    # RedactingFilter kept log records formattable, and the notifier names itself when ready
    assert "--- Logging error ---" not in log and "cxmon worker ready" not in log


def read_topic(
    deployment: Deployment, topic: str, *, expect: int, timeout_s: float = 20
) -> list[Any]:
    """Records of one of the notifier's topics, once `expect` of them arrived."""
    return read_until(
        deployment.bootstrap, topic, lambda records: len(records) >= expect, timeout_s=timeout_s
    )


def test_a_silence_stops_delivery_and_its_expiry_resumes_it(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    team = Recorder()
    alerting = one_webhook(httpserver, "team", team)
    with notifier(deployment, alerting) as (proc, env):
        cli = [sys.executable, "-m", "cli.main", "silence"]
        added = subprocess.run(
            [
                *cli,
                "add",
                "--match",
                "rule=noisy",
                "--match",
                "owners=billing",
                "--for",
                "1h",
                "--comment",
                "known issue",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        silence_id = added.stdout.strip()
        wait_for(lambda: metric(proc, "cxmon_silences_active") == 1, "the silence to be seen", proc)
        listed = subprocess.run(
            [*cli, "list"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        hushed = alert(1, "noisy", ["support", "billing"])
        produce(deployment, hushed)
        wait_for(
            lambda: metric(proc, "cxmon_alerts_silenced_total") == 1,
            "the alert to be silenced",
            proc,
        )
        subprocess.run(
            [*cli, "expire", silence_id],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        wait_for(lambda: metric(proc, "cxmon_silences_active") == 0, "the expiry to be seen", proc)
        heard = alert(2, "noisy", ["support", "billing"])
        produce(deployment, heard)
        wait_for(lambda: len(fingerprints(team)) >= 1, "delivery after the expiry", proc)
    assert silence_id in listed.stdout and "rule=noisy owners=billing" in listed.stdout
    assert fingerprints(team) == [heard.fingerprint], proc.log()


class SlowRecorder(Recorder):
    """Takes each notification in, then answers only `hold_s` later (a slow receiver)."""

    def __init__(self, hold_s: float) -> None:
        super().__init__()
        self.hold_s = hold_s

    def __call__(self, request: Request) -> Response:
        self.calls += 1
        self.accepted.append((dict(request.headers), request.get_data()))
        time.sleep(self.hold_s)
        return Response("ok", status=200)


def test_a_crash_while_sending_repeats_at_most_the_notifications_in_flight(
    deployment: Deployment, httpserver: HTTPServer
) -> None:
    """kill -9 while a slow receiver holds notifications of several groups: after the restart
    every alert arrives, and what arrives twice is what was in flight, no more, each logged and
    counted as sent again (the notifier recorded its intent before sending)."""
    slow = SlowRecorder(hold_s=3)
    alerting = one_webhook(httpserver, "slow", slow, group_by="[rule]")
    alerts = [alert(n, f"rule-{n}", ["sales", "onboarding"]) for n in range(8)]  # 8 groups
    with notifier(deployment, alerting) as (proc, _):
        produce(deployment, *alerts)
        wait_for(lambda: len(slow.accepted) >= 2, "the receiver to hold two notifications", proc)
        proc.stop(signal.SIGKILL)
    slow.hold_s = 0
    with notifier(deployment, alerting) as (proc, _):
        # alerts handled before the kill were committed and are not read again
        wait_for(
            lambda: (
                metric(proc, "cxmon_notifications_resent_total") >= 1
                and metric(proc, "cxmon_notifier_pending_alerts") == 0
                and set(fingerprints(slow)) == {a.fingerprint for a in alerts}
            ),
            "the restarted notifier to handle what it read again",
            proc,
            timeout_s=60,  # a group join and seven deliveries; ~15 s here, more under load
        )
        resent = metric(proc, "cxmon_notifications_resent_total")
        log = proc.log()
    received = fingerprints(slow)
    assert set(received) == {a.fingerprint for a in alerts}
    twice = {f for f in received if received.count(f) > 1}
    # each of the 8 groups had one notification in flight: that, and only that, may repeat
    assert 1 <= resent <= len(alerts), (resent, received)
    assert twice and all(f in log for f in twice), (twice, log)
