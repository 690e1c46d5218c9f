"""A real Alertmanager for tests: own config, own storage dir, a free loopback port, its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.broker import free_port

MISSING = "Alertmanager is not installed: install Debian's `prometheus-alertmanager` (.ci/run does)"


@dataclass
class AlertmanagerServer:
    """A running Alertmanager and its API v2."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """Its base URL."""
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> Any:
        """GET an API v2 path, decoded."""
        with urllib.request.urlopen(f"{self.url}/api/v2/{path}", timeout=5) as response:  # noqa: S310 - loopback
            return json.load(response)

    def post(self, path: str, body: Any) -> Any:
        """POST JSON to an API v2 path, decoded."""
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}/api/v2/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return json.load(response)

    def log(self) -> str:
        """What Alertmanager printed so far."""
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
def alertmanager(workdir: Path) -> Iterator[AlertmanagerServer]:
    """Alertmanager with a do-nothing receiver, clustering off, on 127.0.0.1:<free port>."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, MISSING
    config = workdir / "alertmanager.yml"
    config.write_text(
        json.dumps({"route": {"receiver": "null"}, "receivers": [{"name": "null"}]}),
        encoding="utf-8",
    )
    port = free_port()
    log_path = workdir / "alertmanager.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip port
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = AlertmanagerServer(process, port, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        server.stop()


def _wait_ready(server: AlertmanagerServer, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"alertmanager exited:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"alertmanager not ready after {timeout_s}s:\n{server.log()}")
