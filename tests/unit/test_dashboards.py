"""The shipped Grafana dashboards are well-formed and query only metrics the monitor exposes."""

from __future__ import annotations

import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from ruamel.yaml import YAML

from tests.grafana import (
    DASHBOARDS,
    GRAFANA_GLOBALS,
    ROOT,
    VARIABLE,
    Query,
    load,
    metric_names,
    notifier_metric_names,
    queries,
    worker_metric_names,
)

REQUIRED = {"cx-gap-overview.json", "handoffs.json", "monitor-health.json"}
ALL_QUERIES = list(queries())


def _by_name(path: Path) -> str:
    return path.name


def _datasources(node: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                found.append(value)
            found.extend(_datasources(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_datasources(item))
    return found


def test_the_three_dashboards_are_shipped() -> None:
    assert REQUIRED <= {p.name for p in DASHBOARDS}


def test_dashboards_are_generated_from_build_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "dashboards" / "build.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_dashboard_uids_are_unique_and_stable() -> None:
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=_by_name)
def test_datasource_is_a_template_variable(path: Path) -> None:
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    sources = _datasources(dashboard["panels"])
    assert sources, "panels name no datasource"
    assert all(s == {"type": "prometheus", "uid": "${datasource}"} for s in sources), sources


@pytest.mark.parametrize("path", DASHBOARDS, ids=_by_name)
def test_panel_ids_are_unique(path: Path) -> None:
    ids = [panel["id"] for panel in load(path)["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=_by_name)
def test_panels_fit_the_grid_without_overlapping(path: Path) -> None:
    boxes = []
    for panel in load(path)["panels"]:
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert pos["x"] >= 0 and pos["y"] >= 0 and pos["w"] > 0 and pos["h"] > 0
        assert pos["x"] + pos["w"] <= 24, f"{panel['title']!r} is wider than the grid"
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in combinations(boxes, 2):
        apart = (
            p["x"] + p["w"] <= q["x"]
            or q["x"] + q["w"] <= p["x"]
            or p["y"] + p["h"] <= q["y"]
            or q["y"] + q["h"] <= p["y"]
        )
        assert apart, f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=_by_name)
def test_every_panel_has_queries_with_expressions(path: Path) -> None:
    for panel in load(path)["panels"]:
        if panel["type"] == "row":
            assert "targets" not in panel
            continue
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['title']!r} has no query"
        assert all(t.get("expr", "").strip() for t in targets), panel["title"]
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_every_expression_parses(query: Query) -> None:
    unknown = set(VARIABLE.findall(query.expr)) - set(GRAFANA_GLOBALS)
    assert not unknown, f"{query.name} uses undefined variables {unknown}"
    promql_parser.parse(query.promql())


def test_a_broken_expression_is_caught_by_the_parser() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (rule (rate(cxmon_conflicts_total[1m]))")


def test_dashboards_use_only_metrics_the_monitor_exposes() -> None:
    known = worker_metric_names() | notifier_metric_names()
    used = {name: q.name for q in ALL_QUERIES for name in metric_names(q.promql())}
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown, f"metrics not defined in monitor/metrics.py or Faust's sensor: {unknown}"


def test_metric_names_come_from_the_parse_tree() -> None:
    expr = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="b_total"}[1m]))) / ignoring(y) c'
    assert metric_names(expr) == {"a_bucket", "c"}


def test_docs_list_every_metric() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    families = {
        re.sub(r"_(total|bucket|sum|count|info)$", "", name)
        for name in worker_metric_names() | notifier_metric_names()
        if not name.startswith("cxmon_faust_")
    }
    missing = sorted(f for f in families if f not in text)
    assert not missing, f"docs/metrics.md does not describe {missing}"


def test_grafana_provisioning_loads_the_dashboards_from_prometheus() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    yaml = YAML(typ="safe")
    sources = yaml.load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert [s["type"] for s in sources["datasources"]] == ["prometheus"]
    assert sources["datasources"][0]["isDefault"] is True
    provider = yaml.load((provisioning / "dashboards" / "provider.yml").read_text())
    (only,) = provider["providers"]
    assert only["type"] == "file"
    assert only["options"]["path"] == "/var/lib/grafana/dashboards/cxmon"


def test_grafana_provisions_an_alertmanager_source_that_the_gap_overview_links_to() -> None:
    provisioning = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
    sources = YAML(typ="safe").load((provisioning / "alertmanager.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "alertmanager"
    assert source["jsonData"]["implementation"] == "prometheus"
    links = load(ROOT / "dashboards" / "cx-gap-overview.json")["links"]
    assert any(f"alertmanager={source['name']}" in link.get("url", "") for link in links)
