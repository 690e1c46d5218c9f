"""Panel and dashboard builders shared by `build.py`: one datasource variable, one layout rule."""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
Panel = dict[str, Any]


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Panel:
    """One PromQL query of a panel."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
        "format": "table" if table else "time_series",
    }


def _panel(kind: str, title: str, description: str, targets: list[Panel], w: int, h: int) -> Panel:
    for ref, item in zip("ABCDEFGHIJ", targets, strict=False):
        item["refId"] = ref
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
    }


def timeseries(
    title: str,
    description: str,
    *queries: tuple[str, str],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
) -> Panel:
    """A graph over time; each query is (expr, legend)."""
    panel = _panel("timeseries", title, description, [target(e, lg) for e, lg in queries], w, h)
    panel["fieldConfig"] = {
        "defaults": {
            "unit": unit,
            "min": 0,
            "custom": {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 20 if stacked else 0,
                "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
                "spanNulls": False,
            },
        },
        "overrides": [],
    }
    panel["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    w: int = 6,
    h: int = 4,
    warn_at: float | None = None,
) -> Panel:
    """One number, the latest value; red from `warn_at` on (if given)."""
    panel = _panel("stat", title, description, [target(expr, instant=True)], w, h)
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if warn_at is not None:
        steps.append({"color": "red", "value": warn_at})
    panel["fieldConfig"] = {
        "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
        "overrides": [],
    }
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "textMode": "auto",
    }
    return panel


def bars(title: str, description: str, expr: str, legend: str, *, w: int = 12, h: int = 8) -> Panel:
    """Horizontal bars, one per series (for top-N lists)."""
    panel = _panel("bargauge", title, description, [target(expr, legend, instant=True)], w, h)
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "min": 0,
            "thresholds": {"mode": "absolute", "steps": [{"color": "orange", "value": None}]},
        },
        "overrides": [],
    }
    panel["options"] = {
        "orientation": "horizontal",
        "displayMode": "gradient",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
    }
    return panel


def gap_map(title: str, description: str, expr: str, *, w: int = 12, h: int = 10) -> Panel:
    """A from_department x to_department matrix of one instant query, cells coloured by value."""
    panel = _panel("table", title, description, [target(expr, instant=True, table=True)], w, h)
    panel["transformations"] = [
        {
            "id": "groupingToMatrix",
            "options": {
                "rowField": "from_department",
                "columnField": "to_department",
                "valueField": "Value",
                "emptyValue": "zero",
            },
        }
    ]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "decimals": 0,
            "custom": {"align": "center", "cellOptions": {"type": "color-background"}},
            "color": {"mode": "thresholds"},
            "thresholds": {
                "mode": "absolute",
                "steps": [
                    {"color": "transparent", "value": None},
                    {"color": "yellow", "value": 1},
                    {"color": "orange", "value": 5},
                    {"color": "red", "value": 20},
                ],
            },
        },
        "overrides": [
            {
                "matcher": {"id": "byName", "options": "from_department\\to_department"},
                "properties": [
                    {"id": "displayName", "value": "from \\ to"},
                    {"id": "custom.cellOptions", "value": {"type": "auto"}},
                ],
            }
        ],
    }
    panel["options"] = {"showHeader": True, "cellHeight": "sm"}
    return panel


def row(title: str) -> Panel:
    """A section header across the whole width."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"h": 1}}


def layout(panels: list[Panel]) -> list[Panel]:
    """Place panels left to right, wrapping at 24 columns; a row starts a new line. Ids from 1."""
    x = y = line_height = 0
    for number, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if panel["type"] == "row":
            y += line_height
            pos.update(x=0, y=y, w=GRID_WIDTH)
            y, x, line_height = y + 1, 0, 0
        else:
            if x + pos["w"] > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            pos.update(x=x, y=y)
            x += pos["w"]
            line_height = max(line_height, pos["h"])
        panel["id"] = number
    return panels


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> Panel:
    """The dashboard envelope: datasource variable, links to the others, schema version 39."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["cxmon"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "links": [
            {
                "type": "dashboards",
                "title": "cxmon",
                "tags": ["cxmon"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Prometheus",
                    "query": "prometheus",
                    "regex": "",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                }
            ]
        },
        "annotations": {"list": []},
        "panels": layout(panels),
    }
