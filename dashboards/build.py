"""Generate the Grafana dashboards in this folder: `python dashboards/build.py` (`--check`: fail
if a committed file differs from what this script writes).

The JSON files are the product (Grafana imports or provisions them); this script is how they are
written, so that every panel shares one datasource variable, one layout rule and one style.
The team leads' dashboards are in business.py, the platform team's in health.py, the panel
builders in panels.py. Edit the panels there, run this script, commit both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from business import gap_overview, handoffs
from health import monitor_health
from panels import Panel

HERE = Path(__file__).resolve().parent

# Grafana's alert list panel lists alert *rules* from rule sources (Prometheus, Loki, Mimir);
# alerts posted to an external Alertmanager are not among them. They are in Grafana's alert
# groups view of the provisioned Alertmanager data source
# (deploy/grafana/provisioning/datasources/alertmanager.yml), which this link opens.
OPEN_CONFLICTS_LINK = {
    "type": "link",
    "title": "Open conflicts (Alertmanager)",
    "tooltip": "cxmon's firing conflicts as the Alertmanager receiver posted them, by gap",
    "url": "/alerting/groups?alertmanager=Alertmanager&groupBy=from_department,to_department",
    "icon": "bolt",
    "targetBlank": False,
}


def gap_overview_with_links() -> Panel:
    """The gap overview, with a link to the alerts its Alertmanager receiver posted."""
    board = gap_overview()
    board["links"] = [*board["links"], OPEN_CONFLICTS_LINK]
    return board


DASHBOARDS = {
    "cx-gap-overview.json": gap_overview_with_links,
    "handoffs.json": handoffs,
    "monitor-health.json": monitor_health,
}


def render(build: Any) -> str:
    """The JSON text of one dashboard, as committed."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Write every dashboard next to this script, or with `--check` report stale ones."""
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / name
        text = render(build)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote dashboards/{name}")
    for name in stale:
        print(f"dashboards/{name} is stale: run python dashboards/build.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
