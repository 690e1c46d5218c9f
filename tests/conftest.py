"""For every test run (unit, integration, bench): a SIGTERM ends it as Ctrl-C does."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a `kill`, a CI or tool timeout) ends the run as Ctrl-C does, so every `finally`
    and fixture teardown still stops the processes the tests started: brokers, workers and
    servers run in sessions of their own, and Python's default SIGTERM would leave them running
    with no parent."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
    raise KeyboardInterrupt(f"signal {signum}")
