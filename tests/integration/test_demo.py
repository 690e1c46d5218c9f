"""`make demo` as a user runs it: alerts show up, and stopping the demo stops all it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.integration.harness import ROOT, consecutive_free_ports
from tests.integration.stopping import Child, alive, children_of, stop_demo


def board_data(url: str) -> str:
    """The board's API answer, or '' while the notifier is not serving yet."""
    try:
        with urllib.request.urlopen(url + "api/v1/conflicts", timeout=5) as response:  # noqa: S310
            return str(response.read().decode())
    except OSError:
        return ""


def test_demo_shows_alerts_and_two_sigterms_stop_every_process_it_started(tmp_path: Path) -> None:
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli.main",
                "demo",
                "--rules",
                str(ROOT / "rules"),
                "--sources",
                str(ROOT / "sources"),
                "--metrics-port",
                str(consecutive_free_ports(2)),
            ],
            cwd=tmp_path,  # the demo keeps its files under .cxmon/demo of where it runs
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "CXMON_ALERTING_PATH": str(ROOT / "alerting.yaml"),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started: list[Child] = []
    try:
        deadline = time.monotonic() + 90
        # Billing's charges come as raw payment webhooks through sources/payments.yaml: this
        # alert exists only if the demo's worker read them.
        while "billing-charges-waived-fee" not in log_path.read_text(errors="replace"):
            assert demo.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while len(started) < 4 and time.monotonic() < deadline:  # broker, worker, notifier, sim
            started = children_of(demo.pid)
            time.sleep(0.2)
        assert len(started) == 4, started
        notifications = tmp_path / ".cxmon" / "demo" / "notifications.log"
        deadline = time.monotonic() + 30
        while "[FIRING]" not in (notifications.read_text() if notifications.exists() else ""):
            assert time.monotonic() < deadline, "the notifier delivered nothing"
            time.sleep(0.2)
        printed = re.search(r"conflict board on (http://\S+/)", log_path.read_text())
        assert printed, log_path.read_text(errors="replace")[-3000:]
        deadline = time.monotonic() + 30
        while "firing" not in board_data(printed.group(1)):  # the demo's conflicts on the board
            assert time.monotonic() < deadline, "the board shows no conflict"
            time.sleep(0.5)

        demo.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while "demo: stopping" not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.01)
        demo.send_signal(signal.SIGTERM)  # a second one during the shutdown (make forwards two)
        assert demo.wait(60) == 0
        assert [child for child in started if alive(child)] == []
        assert not list(tmp_path.glob("*-data")), "a process wrote into the demo's directory"
    finally:
        stop_demo(demo, started)
