"""A real Alertmanager for tests: own config, own storage dir, a free loopback port, its PID."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.broker import free_port
from tests.integration.served import Served, serving

MISSING = "Alertmanager is not installed: install Debian's `prometheus-alertmanager` (.ci/run does)"


class AlertmanagerServer(Served):
    """A running Alertmanager and its API v2."""

    name = "alertmanager"

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
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port
    ]
    with serving(AlertmanagerServer, argv, port, workdir / "alertmanager.log") as server:
        yield server
