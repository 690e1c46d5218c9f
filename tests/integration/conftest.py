"""Fixtures: one embedded broker per session; each test gets unique topics and its own workers."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from streams.broker import EmbeddedBroker
from tests.integration.harness import Deployment

pytestmark = pytest.mark.integration


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a `kill`, a CI or tool timeout) ends the run as Ctrl-C does, so every `finally`
    and fixture teardown still stops the processes the tests started: they run in sessions of
    their own, and Python's default SIGTERM would leave them running with no parent."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the run at once
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded Kafka-compatible broker, stopped by its process group at the end."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(log_path=log) as running:
        yield running


@pytest.fixture
def deployment(broker: EmbeddedBroker, tmp_path: Path) -> Deployment:
    """Unique topics and app id for this test."""
    return Deployment(broker.bootstrap, tmp_path)
