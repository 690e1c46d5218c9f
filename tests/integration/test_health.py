"""A real worker's probes: alive from the start, ready only once the group is joined and the
state recovered, on the same port as /metrics."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.harness import Deployment, WorkerProcess

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "rules"


def _get(worker: WorkerProcess, path: str) -> tuple[int, str] | None:
    """Status and body, or None while nothing listens yet."""
    url = f"http://127.0.0.1:{worker.metrics_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return None


def test_readyz_turns_200_only_once_the_worker_is_ready(deployment: Deployment) -> None:
    with deployment.worker(RULES, wait=False) as worker:
        seen: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not worker.ready_file.exists():
            assert worker.process.poll() is None, worker.log()
            answer = _get(worker, "/readyz")
            if answer is not None:
                seen.append(answer[0])
                if answer[0] == 503:
                    assert answer[1].startswith("not ready: "), answer
                    assert _get(worker, "/healthz") == (200, "ok\n")  # alive while not ready
            time.sleep(0.02)
        assert worker.ready_file.exists(), f"worker not ready in time:\n{worker.log()}"
        # The server starts before the worker touches Kafka, so the probe saw it not ready.
        assert seen and seen[0] == 503, seen
        assert set(seen) <= {200, 503}, seen
        # Readiness is set before the ready file is written: from here on it must be 200.
        assert _get(worker, "/readyz") == (200, "ready\n")
        assert _get(worker, "/healthz") == (200, "ok\n")
        status, metrics = _get(worker, "/metrics") or (0, "")
        assert status == 200
        assert "\ncxmon_worker_ready 1.0\n" in metrics
        assert (_get(worker, "/admin") or (0, ""))[0] == 404
