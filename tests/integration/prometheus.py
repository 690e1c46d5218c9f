"""A real Prometheus server for tests: own config, own data dir, a free loopback port, its PID."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streams.broker import free_port
from tests.integration.served import Served, serving

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
MISSING = "{} is not installed: install Debian's `prometheus` package (.ci/run does)"


def binary(name: str) -> str:
    """The path of `prometheus` or `promtool`; fails the test with what to install."""
    path = shutil.which(name)
    assert path, MISSING.format(name)
    return path


class PrometheusServer(Served):
    """A running Prometheus and how to query it."""

    name = "prometheus"

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
    argv = [
        binary("prometheus"),
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with serving(PrometheusServer, argv, port, workdir / "prometheus.log") as server:
        yield server
