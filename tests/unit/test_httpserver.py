"""The process HTTP server: metrics, liveness, readiness, and nothing else."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter

from monitor.httpserver import Health, RunningServer, serve


@pytest.fixture
def served() -> Iterator[tuple[RunningServer, Health, Counter]]:
    registry = CollectorRegistry()
    counter = Counter("cxmon_test_things", "things", registry=registry)
    health = Health("waiting for the group")
    server = serve("127.0.0.1", 0, registry, health)
    try:
        yield server, health, counter
    finally:
        server.close()


def get(server: RunningServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_come_from_the_registry(served: tuple[RunningServer, Health, Counter]) -> None:
    server, _, counter = served
    counter.inc(3)
    status, body = get(server, "/metrics")
    assert status == 200
    assert "cxmon_test_things_total 3.0" in body


def test_readiness_follows_health_and_liveness_does_not(
    served: tuple[RunningServer, Health, Counter],
) -> None:
    server, health, _ = served
    assert get(server, "/healthz") == (200, "ok\n")
    assert get(server, "/readyz") == (503, "not ready: waiting for the group\n")
    health.set_ready()
    assert get(server, "/readyz") == (200, "ready\n")
    health.set_not_ready("rebalancing")
    assert get(server, "/readyz") == (503, "not ready: rebalancing\n")
    assert get(server, "/healthz")[0] == 200


@pytest.mark.parametrize("path", ["/", "/metrics/extra", "/health", "/readyz/", "/favicon.ico"])
def test_other_paths_are_not_found(
    served: tuple[RunningServer, Health, Counter], path: str
) -> None:
    status, body = get(served[0], path)
    assert status == 404
    assert "/metrics, /healthz, /readyz" in body


def test_close_releases_the_port() -> None:
    server = serve("127.0.0.1", 0, CollectorRegistry(), Health())
    port = server.port
    server.close()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # would raise EADDRINUSE if still held
