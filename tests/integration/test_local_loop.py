"""A rule author's local loop: `cxmon demo --rules DIR --alerting FILE --no-simulate` runs their
own files, `cxmon publish` shows their alerts in their channel; a worker makes its data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.events import Event
from monitor.events.codec import encode
from tests.integration.harness import ROOT, Deployment, consecutive_free_ports
from tests.integration.stopping import stop_demo

RULE = """\
version: 1
rules:
  - id: my-own-rule
    title: A waiver followed by a charge
    kind: contradiction
    labels: {team: mine}
    first: {source: support, type: fee.waiver_promised}
    then: {source: billing, type: invoice.charged}
    within: 1d
    message: "{{ key }} was charged after a waiver"
"""
ALERTING = """\
version: 1
receivers:
  - name: mine
    channels: [console://]
route:
  receiver: mine
  group_wait: 0s
"""


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        found = path.read_text(errors="replace") if path.exists() else ""
        if text in found:
            return found
        assert process.poll() is None, found[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in {path}:\n{found[-3000:]}"
        time.sleep(0.2)


def test_demo_runs_my_rules_and_alerting_on_my_events_only(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "rules.yaml").write_text(RULE)
    (tmp_path / "alerting.yaml").write_text(ALERTING)
    log_path = tmp_path / "demo.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "demo", "--rules", "mine", "--alerting",
             "alerting.yaml", "--no-simulate", "--metrics-port", str(consecutive_free_ports(2))],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        shown = _wait_for(log_path, "cxmon publish my-events.jsonl", demo, 90)
        found = re.search(r"CXMON_BOOTSTRAP_SERVERS=(\S+) cxmon publish", shown)
        assert found, shown
        now = datetime.now(UTC)
        waiver = Event(
            id="w1", source="support", type="fee.waiver_promised", time=now - timedelta(minutes=2),
            subject="me-1", data={},
        )  # fmt: skip
        charge = waiver.model_copy(
            update={"id": "b1", "source": "billing", "type": "invoice.charged", "time": now}
        )
        events = tmp_path / "my-events.jsonl"
        events.write_bytes(encode(waiver) + b"\n" + encode(charge) + b"\n")
        published = subprocess.run(  # as the demo told the user to
            [sys.executable, "-m", "cli.main", "publish", str(events)],
            env={**env, "CXMON_BOOTSTRAP_SERVERS": found.group(1)},
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        notifications = tmp_path / ".cxmon" / "demo" / "notifications.log"
        delivered = _wait_for(notifications, "me-1 was charged after a waiver", demo, 60)
        assert "my-own-rule" in delivered
        output = log_path.read_text(errors="replace")
        assert "simulate:" not in output  # no simulated traffic
        assert [line for line in output.splitlines() if "[FIRING]" in line] == [
            line for line in output.splitlines() if "[FIRING]" in line and "my-own-rule" in line
        ]
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
    finally:
        stop_demo(demo)


def test_a_worker_creates_its_data_directory(deployment: Deployment, tmp_path: Path) -> None:
    data = tmp_path / "fresh" / ".cxmon" / "data"
    with deployment.worker(ROOT / "rules", CXMON_DATA_DIR=str(data)) as worker:
        assert worker.process.poll() is None
    assert data.is_dir()
