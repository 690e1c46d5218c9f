"""The shipped Grafana dashboards are well-formed and query only metrics the monitor exposes."""

from __future__ import annotations

import json
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
    assert {p.name for p in DASHBOARDS} >= REQUIRED


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
    unknown = set(VARIABLE.findall(query.expr)) - set(GRAFANA_GLOBALS) - {"$__interval"}
    assert not unknown, f"{query.name} uses undefined variables {unknown}"
    promql_parser.parse(query.promql())


def test_a_broken_expression_is_caught_by_the_parser() -> None:
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (rule (rate(cxmon_conflicts_total[1m]))")


def test_dashboards_use_only_metrics_the_monitor_exposes() -> None:
    # ALERTS: Prometheus' own series of the alerts it evaluates (the monitor alerts annotation).
    known = worker_metric_names() | notifier_metric_names() | {"ALERTS"}
    used = {name: q.name for q in ALL_QUERIES for name in metric_names(q.promql())}
    unknown = {name: where for name, where in used.items() if name not in known}
    assert not unknown, f"metrics not defined in monitor/metrics/ or Faust's sensor: {unknown}"


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


# --- what the team leads and the platform team need from them --------------------------------

BUSINESS = ("cx-gap-overview.json", "handoffs.json")
HEALTH = "monitor-health.json"


def _board(name: str) -> dict[str, Any]:
    return load(ROOT / "dashboards" / name)


def _variables(board: dict[str, Any]) -> set[str]:
    return {v["name"] for v in board["templating"]["list"]}


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", [])]


@pytest.mark.parametrize("name", BUSINESS)
def test_business_dashboards_show_a_week_of_counts_in_buckets(name: str) -> None:
    board = _board(name)
    assert board["time"]["from"] == "now-7d"
    assert board["refresh"] == "5m"
    assert {"from_department", "to_department", "rule", "compare"} <= _variables(board)
    for panel in _panels(board):
        for expr in _exprs(panel):
            assert "rate(" not in expr, f"{panel['title']}: a rate spikes on sparse events"
            if "[$__interval]" in expr:
                assert panel.get("interval") in ("1h", "1d"), panel["title"]
                assert panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] in ("bars", "line")


@pytest.mark.parametrize("name", BUSINESS)
def test_business_counts_are_whole_numbers(name: str) -> None:
    for panel in _panels(_board(name)):
        defaults = panel["fieldConfig"]["defaults"]
        counts = defaults.get("unit") == "short" and any("increase(" in e for e in _exprs(panel))
        if counts and "histogram_quantile" not in " ".join(_exprs(panel)):
            assert defaults.get("decimals") == 0, panel["title"]
            assert all(e.startswith(("round(", "topk(10, round(")) for e in _exprs(panel)), panel[
                "title"
            ]


@pytest.mark.parametrize("name", BUSINESS)
def test_business_dashboards_compare_with_an_earlier_period(name: str) -> None:
    compared = [
        p["title"] for p in _panels(_board(name)) if any("offset $compare" in e for e in _exprs(p))
    ]
    assert len(compared) >= 3, compared


def test_the_gap_map_tells_uncovered_pairs_from_zero_and_links_to_the_pair() -> None:
    maps = [p for p in _panels(_board("cx-gap-overview.json")) if p["title"].startswith("Gap map")]
    assert len(maps) == 2  # this period and the earlier one
    for panel in maps:
        (grouping,) = panel["transformations"]
        assert grouping["options"]["emptyValue"] == "empty"
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["thresholds"]["mode"] == "percentage"  # scales with the range
        (pair,) = defaults["links"]
        assert "var-from_department=" in pair["url"] and "var-to_department=" in pair["url"]
        assert "${__url_time_range}" in pair["url"]


def test_rules_link_to_the_rule_filtered_view() -> None:
    for name in BUSINESS:
        linked = [
            p["title"]
            for p in _panels(_board(name))
            if "var-rule=${__" in json.dumps(p.get("fieldConfig", {}))
        ]
        assert linked, name


def test_durations_are_in_seconds_units() -> None:
    for name in (*BUSINESS, HEALTH):
        for panel in _panels(_board(name)):
            exprs = " ".join(_exprs(panel))
            if re.search(r"histogram_quantile\(.*_seconds_bucket|_age_seconds|_lag_seconds", exprs):
                assert panel["fieldConfig"]["defaults"]["unit"] == "s", panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=_by_name)
def test_every_variable_a_query_uses_is_defined(path: Path) -> None:
    defined = {f"${name}" for name in _variables(load(path))}
    grafana_own = {"$__rate_interval", "$__range", "$__interval"}
    for query in (q for q in ALL_QUERIES if q.dashboard == path.name):
        assert set(VARIABLE.findall(query.expr)) - grafana_own <= defined, query.name


def test_monitor_health_selects_by_namespace_job_and_instance() -> None:
    board = _board(HEALTH)
    assert {"namespace", "job", "instance"} <= _variables(board)
    for query in (q for q in ALL_QUERIES if q.dashboard == HEALTH):
        for name in metric_names(query.promql()) - {"ALERTS"}:
            selectors = re.findall(rf"{name}\{{([^}}]*)\}}", query.expr)
            assert selectors, f"{query.name}: {name} without the instance selectors"
            assert all('job=~"$job"' in s and 'instance=~"$instance"' in s for s in selectors)


def test_health_stats_turn_red_at_zero_where_zero_is_bad() -> None:
    stats = {p["title"]: p for p in _panels(_board(HEALTH)) if p["type"] == "stat"}
    for title in ("Workers ready", "Notifiers ready", "Rules load"):
        steps = stats[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0] == {"color": "red", "value": None}, title
        assert {"color": "green", "value": 1} in steps, title


def test_delivery_outcomes_do_not_stack_a_give_up_twice() -> None:
    panels = {p["title"]: p for p in _panels(_board(HEALTH))}
    (expr,) = _exprs(panels["Deliveries by channel and outcome"])
    assert 'outcome!="dead_lettered"' in expr
    assert "gave up" in panels["Deliveries by channel and outcome"]["description"]


def test_monitor_health_annotates_reloads_versions_and_alerts() -> None:
    annotations = {a["name"]: a["expr"] for a in _board(HEALTH)["annotations"]["list"]}
    assert "cxmon_rule_reloads_total" in annotations["Rule reloads"]
    assert "cxmon_build_info" in annotations["Version changes"]
    assert "ALERTS" in annotations["Monitor alerts"]


def test_bar_links_name_the_bars_series_and_table_links_the_cell() -> None:
    for name in BUSINESS:
        for panel in _panels(_board(name)):
            links = json.dumps(panel.get("fieldConfig", {}))
            if panel["type"] == "bargauge" and "var-rule" in links:
                assert "${__field.labels.rule}" in links and "__value" not in links, panel["title"]
            if panel["type"] == "table" and "var-rule" in links:
                assert "${__value.raw}" in links, panel["title"]
