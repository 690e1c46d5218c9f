"""A worker whose broker is gone still stops within its grace period on SIGTERM."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from streams.broker import EmbeddedBroker
from tests.integration.harness import Deployment

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def test_worker_with_its_broker_gone_exits_by_its_stop_timeout(tmp_path: Path) -> None:
    """Faust's stop retries the stopped broker for 35 s and more; a platform kills it at 30 s
    without a word. With `stop_timeout_s` it exits by the deadline, saying why."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:  # its own: it is stopped
        deployment = Deployment(broker.bootstrap, tmp_path)
        with deployment.worker(RULES, CXMON_STOP_TIMEOUT_S="4") as worker:
            broker.stop()
            time.sleep(1)  # not a synchronisation: the worker is meant to be mid-reconnect
            started = time.monotonic()
            worker.process.send_signal(signal.SIGTERM)
            try:
                worker.process.wait(15)
            except Exception:
                pytest.fail(f"still running 15 s after SIGTERM:\n{worker.log()[-3000:]}")
            took = time.monotonic() - started
    assert took < 8, worker.log()[-3000:]
    assert worker.process.returncode in (0, 1)
