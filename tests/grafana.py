"""The shipped dashboards as data for tests: panels, their PromQL, and the metric names they use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics, NotifierMetrics
from streams.worker import FAUST_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))

# What Grafana puts in place of its variables; the windows are long enough to cover a short
# test's traffic, so a rate over them sees every sample the test produced. The dashboards'
# own variables take "All" (`.*`); the earlier period to compare with takes a few seconds,
# as far back as a Prometheus that is a minute old has data (a week in the dashboards).
GRAFANA_GLOBALS = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$compare": "10s",
    "$from_department": ".*",
    "$to_department": ".*",
    "$rule": ".*",
    "$namespace": ".*",
    "$job": ".*",
    "$instance": ".*",
}
# `$__interval` is the panel's minimum interval (its buckets: 1h, 1d) or Grafana's step.
DEFAULT_INTERVAL = "15s"
VARIABLE = re.compile(r"\$\{?\w+\}?")


@dataclass(frozen=True)
class Query:
    """One target of one panel."""

    dashboard: str
    panel_id: int
    panel: str
    ref: str
    expr: str
    interval: str = DEFAULT_INTERVAL

    @property
    def name(self) -> str:
        """Where the query lives, for messages."""
        return f"{self.dashboard} #{self.panel_id} {self.panel!r} {self.ref}"

    def promql(self) -> str:
        """The expression as Grafana sends it to Prometheus."""
        expr = self.expr.replace("$__interval", self.interval)
        for variable, value in GRAFANA_GLOBALS.items():
            expr = expr.replace(variable, value)
        return expr


def load(path: Path) -> dict[str, Any]:
    """One dashboard's JSON."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def queries() -> Iterator[Query]:
    """Every panel target and annotation query of every shipped dashboard."""
    for path in DASHBOARDS:
        dashboard = load(path)
        for panel in dashboard["panels"]:
            interval = panel.get("interval", DEFAULT_INTERVAL)
            for target in panel.get("targets", []):
                yield Query(
                    path.name,
                    panel["id"],
                    panel["title"],
                    target["refId"],
                    target["expr"],
                    interval,
                )
        for item in dashboard["annotations"]["list"]:
            yield Query(path.name, 0, f"annotation {item['name']}", "A", item["expr"])


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        return True

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return names


def _exposed(registry: CollectorRegistry) -> set[str]:
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "info": ("_info",),
        "gauge": ("",),
    }
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def worker_metric_names() -> set[str]:
    """Every series name a worker exposes: cxmon's metrics and Faust's sensor."""
    registry = CollectorRegistry()
    Metrics(registry)
    FaustMetrics.create(registry, FAUST_PREFIX)
    return _exposed(registry)


def notifier_metric_names() -> set[str]:
    """Every series name the notifier exposes: cxmon's and Faust's sensor (lag on cx.alerts)."""
    registry = CollectorRegistry()
    NotifierMetrics(registry)
    FaustMetrics.create(registry, FAUST_PREFIX)
    return _exposed(registry)
