"""A real Prometheus server for tests: own config, own data dir, a free loopback port, its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
MISSING = "{} is not installed: install Debian's `prometheus` package (.ci/run does)"


def binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; fails the test with what to install."""
    path = shutil.which(name)
    assert path, MISSING.format(name)
    return path


@dataclass
class PrometheusServer:
    """A running Prometheus and how to query it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def query(self, expr: str) -> dict[str, Any]:
        """The decoded body of /api/v1/query (errors included, never raised)."""
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(address, timeout=5) as response:  # noqa: S310 - loopback
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a bad query; the body says why
            body = json.load(error)
        return body

    def values(self, expr: str) -> list[float]:
        """The sample values of an instant query that must succeed."""
        body = self.query(expr)
        assert body["status"] == "success", body
        return [float(item["value"][1]) for item in body["data"]["result"]]

    def log(self) -> str:
        """What Prometheus printed so far."""
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        """Stop its process group; SIGKILL if it does not exit in time."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


@contextmanager
def prometheus(workdir: Path, targets: dict[str, list[str]]) -> Iterator[PrometheusServer]:
    """Prometheus scraping `targets` (job -> host:port) every second, with cxmon's alert rules."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": hosts}]}
            for job, hosts in targets.items()
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = PrometheusServer(process, f"http://127.0.0.1:{port}", log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


def _wait_ready(server: PrometheusServer, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"prometheus not ready after {timeout_s}s:\n{server.log()}")
