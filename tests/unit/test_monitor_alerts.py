"""The alert rules on the monitor: runbooks, paging policy, test coverage and selectors.

promtool itself (check and rule tests) runs in tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RENDER = runpy.run_path(str(PROMETHEUS / "render.py"))
# Users are affected now: no detection, or detected conflicts not reaching the teams.
PAGES = {
    "CxmonNoWorkerReady",
    "CxmonWorkersNotProcessing",
    "CxmonNoNotifierRunning",
    "CxmonNotifierBacklog",
    "CxmonAlertDeliveriesFailing",
}


def _yaml(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _alerts(text: str | None = None) -> list[dict[str, Any]]:
    text = text or (PROMETHEUS / "rules" / "cxmon.rules.yml").read_text(encoding="utf-8")
    return [r for g in _yaml(text)["groups"] for r in g["rules"] if "alert" in r]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_has_a_runbook_section() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8")
    anchors = _anchors(runbooks)
    for alert in _alerts():
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == RENDER["RUNBOOKS"], url
        assert anchor == alert["alert"].lower(), url
        assert anchor in anchors, f"docs/runbooks.md has no section {alert['alert']}"


def test_only_user_impact_pages() -> None:
    severities = {a["alert"]: a["labels"]["severity"] for a in _alerts()}
    assert set(severities.values()) == {"critical", "warning"}
    assert {name for name, s in severities.items() if s == "critical"} == PAGES


def test_every_alert_has_a_firing_and_a_quiet_promtool_case() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((PROMETHEUS / "tests").glob("*.yml")):
        for test in _yaml(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fires == set(), "alerts never seen firing in a promtool test"
    assert names - quiet == set(), "alerts never seen quiet in a promtool test"


def test_every_alert_is_documented() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    missing = [a["alert"] for a in _alerts() if f"`{a['alert']}`" not in text]
    assert not missing, f"docs/metrics.md does not list {missing}"


def test_rendering_replaces_every_selector_and_runbook() -> None:
    worker = 'namespace="cx",service="cxmon-worker"'
    notifier = 'namespace="cx",service=~"cxmon-notifier.*"'
    text = RENDER["render"](worker, notifier, "https://docs.example.org/runbooks.md")
    assert 'job="cxmon-' not in text
    assert "cxmon.example.com" not in text
    alerts = _alerts(text)
    assert len(alerts) == len(_alerts())
    for expr in (a["expr"] for a in alerts):
        for selector in re.findall(r"\bup\{([^}]*)\}", expr):
            assert selector in (worker, notifier), expr
    assert all(
        a["annotations"]["runbook_url"].startswith("https://docs.example.org/runbooks.md#")
        for a in alerts
    )


@pytest.mark.parametrize("bad", ["", "cxmon-worker", 'job="a"}', "job=a"])
def test_rendering_refuses_what_is_not_a_selector(bad: str) -> None:
    with pytest.raises(ValueError, match="label matchers"):
        RENDER["render"](worker=bad)
