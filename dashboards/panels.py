"""Panel and dashboard builders shared by `build.py`: one datasource variable, one layout rule."""

from __future__ import annotations

from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
Panel = dict[str, Any]
Steps = list[tuple[str, float | None]]  # (colour, from this value on); the first has None

RED_BELOW_ONE: Steps = [("red", None), ("green", 1)]  # a count of ready things, a 0/1 flag
NEUTRAL: Steps = [("text", None)]  # business counts: no good or bad colour


def target(
    expr: str, legend: str = "", *, instant: bool = False, table: bool = False, ref: str = ""
) -> Panel:
    """One PromQL query of a panel."""
    item = {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
        "format": "table" if table else "time_series",
    }
    if ref:
        item["refId"] = ref
    return item


def _panel(kind: str, title: str, description: str, targets: list[Panel], w: int, h: int) -> Panel:
    for ref, item in zip("ABCDEFGHIJ", targets, strict=False):
        item.setdefault("refId", ref)
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "gridPos": {"w": w, "h": h},
    }


def _thresholds(steps: Steps) -> Panel:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def link(title: str, url: str) -> Panel:
    """A data link; Grafana fills `${...}` from the clicked value and keeps the time range."""
    return {"title": title, "url": url}


def timeseries(
    title: str,
    description: str,
    *queries: tuple[str, str],
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    stacked: bool = False,
    bars: str = "",
    interval: str = "",
    decimals: int | None = None,
    threshold: float | None = None,
    dashed: str = "",
) -> Panel:
    """A graph over time; each query is (expr, legend).

    `bars`: draw bars, one per `$__interval` bucket of at least this size ("1h", "1d"), for
    counts of sparse events (a per-second rate over a short window spikes on one event).
    `interval`: the same minimum bucket for a line, drawn with its points.
    `threshold`: a red line from this value on. `dashed`: a refId drawn as a dashed line (the
    earlier period beside this one).
    """
    panel = _panel("timeseries", title, description, [target(e, lg) for e, lg in queries], w, h)
    custom: Panel = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 80 if bars else 20 if stacked else 0,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        "spanNulls": False,
        "showPoints": "always" if interval else "auto",
        "thresholdsStyle": {"mode": "line" if threshold is not None else "off"},
    }
    defaults: Panel = {"unit": unit, "min": 0, "custom": custom}
    if threshold is not None:
        defaults["thresholds"] = _thresholds([("green", None), ("red", threshold)])
        defaults["color"] = {"mode": "palette-classic"}
    if decimals is not None:
        defaults["decimals"] = decimals
    overrides: list[Panel] = []
    if dashed:
        overrides.append(
            {
                "matcher": {"id": "byFrameRefID", "options": dashed},
                "properties": [
                    {"id": "custom.drawStyle", "value": "line"},
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                    {"id": "custom.lineWidth", "value": 2},
                    {"id": "custom.fillOpacity", "value": 0},
                    {"id": "custom.stacking", "value": {"mode": "none", "group": "B"}},
                ],
            }
        )
    panel["fieldConfig"] = {"defaults": defaults, "overrides": overrides}
    if bars or interval:
        panel["interval"] = bars or interval
    panel["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["sum", "max"]}
        if bars
        else {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def stat(
    title: str,
    description: str,
    *queries: tuple[str, str],
    unit: str = "short",
    w: int = 6,
    h: int = 4,
    steps: Steps | None = None,
    warn_at: float | None = None,
    decimals: int | None = 0,
    mappings: dict[str, str] | None = None,
) -> Panel:
    """One number per query, the latest value; each query is (expr, legend).

    Colours: `steps`, or green with red from `warn_at` on. Counts show 0 decimals.
    `mappings`: value -> text (1 -> "OK").
    """
    targets = [target(e, lg, instant=True) for e, lg in queries]
    panel = _panel("stat", title, description, targets, w, h)
    if steps is None:
        steps = [("green", None)] + ([("red", warn_at)] if warn_at is not None else [])
    defaults: Panel = {"unit": unit, "thresholds": _thresholds(steps)}
    if decimals is not None:
        defaults["decimals"] = decimals
    if mappings:
        defaults["mappings"] = [
            {"type": "value", "options": {v: {"text": text} for v, text in mappings.items()}}
        ]
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
        "graphMode": "none",
        "textMode": "value_and_name" if len(queries) > 1 else "auto",
        "justifyMode": "center",
    }
    return panel


def bars(
    title: str,
    description: str,
    expr: str,
    legend: str,
    *,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    decimals: int | None = 0,
    links: list[Panel] | None = None,
    steps: Steps | None = None,
    maximum: float | None = None,
) -> Panel:
    """Horizontal bars, one per series of an instant query (for top-N lists)."""
    panel = _panel("bargauge", title, description, [target(expr, legend, instant=True)], w, h)
    defaults: Panel = {
        "unit": unit,
        "min": 0,
        "thresholds": _thresholds(steps or [("orange", None)]),
        "links": links or [],
    }
    if maximum is not None:
        defaults["max"] = maximum
    if decimals is not None:
        defaults["decimals"] = decimals
    panel["fieldConfig"] = {"defaults": defaults, "overrides": []}
    panel["options"] = {
        "orientation": "horizontal",
        "displayMode": "gradient",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
    }
    return panel


def comparison(
    title: str,
    description: str,
    now: str,
    before: str,
    *,
    by: str,
    before_name: str,
    unit: str = "short",
    decimals: int = 0,
    links: list[Panel] | None = None,
    w: int = 12,
    h: int = 8,
) -> Panel:
    """A table of two instant queries by one label: this period beside an earlier one."""
    targets = [
        target(now, instant=True, table=True, ref="A"),
        target(before, instant=True, table=True, ref="B"),
    ]
    panel = _panel("table", title, description, targets, w, h)
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "renameByName": {"Value #A": "this period", "Value #B": before_name},
            },
        },
        {"id": "sortBy", "options": {"sort": [{"field": "this period", "desc": True}]}},
    ]
    panel["fieldConfig"] = {
        "defaults": {"unit": unit, "decimals": decimals, "custom": {"align": "auto"}},
        "overrides": [
            {
                "matcher": {"id": "byName", "options": by},
                "properties": [{"id": "links", "value": links or []}],
            },
            {
                "matcher": {"id": "byName", "options": "this period"},
                "properties": [
                    {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}}
                ],
            },
        ],
    }
    panel["options"] = {"showHeader": True, "cellHeight": "sm"}
    return panel


def gap_map(
    title: str, description: str, expr: str, *, links: list[Panel], w: int = 12, h: int = 10
) -> Panel:
    """A from_department x to_department matrix of one instant query, cells coloured by value.

    A pair no rule covers has no series and stays empty; a covered pair without conflicts
    shows 0 (every rule's series exists from the start). Colours are relative to the largest
    cell, so they scale with the time range.
    """
    panel = _panel("table", title, description, [target(expr, instant=True, table=True)], w, h)
    panel["transformations"] = [
        {
            "id": "groupingToMatrix",
            "options": {
                "rowField": "from_department",
                "columnField": "to_department",
                "valueField": "Value",
                "emptyValue": "empty",
            },
        }
    ]
    panel["fieldConfig"] = {
        "defaults": {
            "unit": "short",
            "decimals": 0,
            "noValue": "",
            "custom": {"align": "center", "cellOptions": {"type": "color-background"}},
            "color": {"mode": "thresholds"},
            "thresholds": {
                "mode": "percentage",
                "steps": [
                    {"color": "green", "value": None},
                    {"color": "yellow", "value": 1},
                    {"color": "orange", "value": 25},
                    {"color": "red", "value": 60},
                ],
            },
            "links": links,
        },
        "overrides": [
            {
                "matcher": {"id": "byName", "options": "from_department\\to_department"},
                "properties": [
                    {"id": "displayName", "value": "from \\ to"},
                    {"id": "custom.cellOptions", "value": {"type": "auto"}},
                    {"id": "links", "value": []},
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


def query_variable(name: str, label: str, query: str) -> Panel:
    """A multi-value variable from label values, "All" by default (matching any value, and
    series without the label)."""
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,  # on time range change: new departments and rules appear
        "sort": 1,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
    }


def compare_variable() -> Panel:
    """How far back the "earlier period" columns and lines look."""
    options = [("1w", "a week earlier"), ("1d", "a day earlier"), ("4w", "four weeks earlier")]
    return {
        "type": "custom",
        "name": "compare",
        "label": "Compare with",
        "query": ",".join(f"{text} : {value}" for value, text in options),
        "current": {"selected": True, "text": options[0][1], "value": options[0][0]},
        "options": [
            {"selected": i == 0, "text": text, "value": value}
            for i, (value, text) in enumerate(options)
        ],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def annotation(name: str, expr: str, title: str, text: str, color: str, tags: str = "") -> Panel:
    """A Prometheus annotation: a mark (or region) wherever `expr` has a sample."""
    return {
        "name": name,
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "1m",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tags,
        "useValueForTime": False,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    *,
    variables: list[Panel] | None = None,
    annotations: list[Panel] | None = None,
    time_from: str = "now-6h",
    refresh: str = "30s",
) -> Panel:
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
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
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
                },
                *(variables or []),
            ]
        },
        "annotations": {"list": annotations or []},
        "panels": layout(panels),
    }
