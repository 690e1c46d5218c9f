"""For every test run (unit, integration, bench): a SIGTERM ends it as Ctrl-C does, and a run
refuses to start on an engine compiled before its source changed."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import pytest

from monitor.build import stale


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a `kill`, a CI or tool timeout) ends the run as Ctrl-C does, so every `finally`
    and fixture teardown still stops the processes the tests started: brokers, workers and
    servers run in sessions of their own, and Python's default SIGTERM would leave them running
    with no parent."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    changed = stale(Path(__file__).resolve().parents[1])
    if changed:
        raise pytest.UsageError(
            f"{', '.join(changed)} changed after the engine was compiled, and Python would run "
            "the old compiled code: `make install` compiles it again (CXMON_COMPILE=0 make "
            "install runs the engine as Python source instead)"
        )


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
    raise KeyboardInterrupt(f"signal {signum}")
