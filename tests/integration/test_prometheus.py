"""Every dashboard panel's query, run by a real Prometheus that scraped a worker under traffic;
promtool checks the shipped config and alert rules."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from monitor.events import Event
from monitor.simulator import Simulator
from tests.grafana import Query, queries
from tests.integration.harness import Deployment
from tests.integration.prometheus import PrometheusServer, binary, prometheus
from tests.integration.test_notifier import notifier

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = ROOT / "rules"
# Panels that show real activity of the traffic below must be above zero, not only present
# (their first query: the second is the earlier period, a few seconds back here).
POSITIVE = {
    "Conflicts",
    "SLA breaches",
    "Open SLA breaches",
    "Oldest open breach",
    "Handoffs completed",
    "Events consumed by department",
    "Records received by topic",
    "Rejected in range",
    "Gap map: conflicts by department pair",
    "Deliveries by channel and outcome",
    "Alerts received",
    "Silenced alerts",
    "Silences active",
    "Workers ready",
    "Notifiers ready",
    "Rules load",
    "Last successful rule reload",
    "Watermark lag by partition",
    "State evictions by rule (15 min)",
    "annotation Rule reloads",
    "annotation Monitor alerts",
}
MAX_STATE_ENTRIES = 10  # the least allowed: the crowded customer below goes over it


def _promtool(*args: str) -> None:
    result = subprocess.run(
        [binary("promtool"), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_promtool_accepts_config_rules_and_rule_tests() -> None:
    _promtool("check", "config", str(DEPLOY / "prometheus.yml"))
    _promtool("check", "rules", *map(str, sorted((DEPLOY / "rules").glob("*.yml"))))
    _promtool("test", "rules", *map(str, sorted((DEPLOY / "tests").glob("*.yml"))))


def test_promtool_accepts_rules_rendered_for_kubernetes(tmp_path: Path) -> None:
    rendered = subprocess.run(
        [
            *(sys.executable, str(DEPLOY / "render.py")),
            *("--worker", 'namespace="cx",service="cxmon-worker"'),
            *("--notifier", 'namespace="cx",service=~"cxmon-notifier|cxmon-notify"'),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp_path / "cxmon.rules.yml"
    path.write_text(rendered, encoding="utf-8")
    _promtool("check", "rules", str(path))


def _traffic() -> list[Event]:
    """Four days of simulated journeys, half of them going wrong, in event-time order, with
    one handoff sure to have breached its SLA (the simulated ones depend on the draw)."""
    now = datetime.now(UTC)
    history = Simulator(seed=11, customers=80, conflict_share=0.5).backfill(
        now - timedelta(days=4), now, journeys=120
    )
    dropped = Event(
        id="prom-deal-1",
        source="sales",
        type="deal.closed",
        time=now - timedelta(days=4),
        subject="cust-prom-dropped",
        data={"deal_id": "D-PROM-1", "plan": "growth"},
    )
    return sorted([dropped, *history], key=lambda e: e.time)


def _crowded(now: datetime) -> list[Event]:
    """More contacts of one customer in a day than a rule may remember: state evictions (and
    with them the CxmonStateEvictions alert, which has no `for:`)."""
    return [
        Event(
            id=f"prom-call-{n}",
            source="sales",
            type="call.made",
            time=now - timedelta(minutes=30 - n),
            subject="cust-prom-crowded",
            data={"call_id": f"C-{n}"},
        )
        for n in range(MAX_STATE_ENTRIES + 5)
    ]


def _silenced_probe(before: datetime) -> list[Event]:
    """A waiver and a charge against it, one conflict of the silenced rule, older than `before`
    so that it moves no partition's watermark past the traffic that follows."""
    waiver = Event(
        id="probe-waiver",
        source="support",
        type="fee.waiver_promised",
        time=before - timedelta(minutes=2),
        subject="silence-probe",
        data={"fee_code": "late_fee"},
    )
    charge = waiver.model_copy(
        update={
            "id": "probe-charge",
            "source": "billing",
            "type": "invoice.charged",
            "time": before - timedelta(minutes=1),
            "data": {"fee_code": "late_fee", "amount": 25},
        }
    )
    return [waiver, charge]


def _late_copy(last: Event) -> Event:
    """An event for the last customer's partition, a day behind its watermark."""
    return last.model_copy(update={"id": "late-1", "time": last.time - timedelta(days=1)})


def _wait_for(server: PrometheusServer, expr: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if any(v > 0 for v in server.values(expr)):
            return
        time.sleep(0.5)
    raise AssertionError(f"{expr} never above zero:\n{server.log()}")


def _label_values(metrics_url: str) -> set[str]:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    return {
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for value in sample.labels.values()
    }


ALERTING = """
version: 1
receivers:
  - name: team
    channels: [{url: "URL", type: webhook}]
route:
  receiver: team
  group_by: [rule]
  group_wait: 0s
  group_interval: 1s
"""
SILENCED_RULE = "billing-charges-waived-fee"


def _silence(env: dict[str, str]) -> None:
    added = subprocess.run(
        [
            *(sys.executable, "-m", "cli.main", "silence", "add"),
            *("--match", f"rule={SILENCED_RULE}", "--for", "1h", "--comment", "dashboard test"),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert added.returncode == 0, f"cxmon silence add failed:\n{added.stdout}{added.stderr}"


def test_every_panel_query_returns_data(
    deployment: Deployment, tmp_path: Path, httpserver: HTTPServer
) -> None:
    traffic = _traffic()
    assert len(traffic) > 250
    assert {q.panel for q in queries()} >= POSITIVE, "POSITIVE names a panel that is not there"
    httpserver.expect_request("/team", method="POST").respond_with_data("ok")
    alerting = ALERTING.replace("URL", httpserver.url_for("/team"))
    with (
        # The shipped source mappings give the mapping panel its (zero) series.
        deployment.worker(
            RULES,
            wait=False,
            CXMON_CONSOLE_ALERTS="false",
            CXMON_MAX_STATE_ENTRIES=str(MAX_STATE_ENTRIES),
            CXMON_SOURCES_PATH=str(ROOT / "sources"),
        ) as worker,
        notifier(deployment, alerting) as (notify, notify_env),
    ):
        worker.wait_ready()  # started with the notifier: their start-ups overlap
        targets = {
            "cxmon-worker": [f"127.0.0.1:{worker.metrics_port}"],
            "cxmon-notifier": [f"127.0.0.1:{notify.metrics_port}"],
        }
        _silence(notify_env)
        with prometheus(tmp_path, targets) as server:
            deadline = time.monotonic() + 180  # a deadline, not a wait: a loaded machine is slow
            # Prometheus must see the counters at zero first, or it cannot tell they rose.
            _wait_for(server, 'sum(up{job="cxmon-worker"})', deadline)
            _wait_for(server, 'sum(up{job="cxmon-notifier"})', deadline)
            _wait_for(server, "sum(cxmon_silences_active)", deadline)
            # cxmon_alerts_silenced_total{rule} is born at its first silenced alert: one probe
            # conflict first, so the traffic's silenced alerts are a rise Prometheus can see
            # (all of them in one scrape interval would read as an increase of 0).
            with deployment.publisher() as out:
                out.send_all(_silenced_probe(traffic[0].time))
                out.flush()
            _wait_for(server, "sum(cxmon_alerts_silenced_total)", deadline)
            with deployment.publisher() as out:
                out.send_all(traffic)
                out.send_all(_crowded(datetime.now(UTC)))
                out.send(_late_copy(traffic[-1]))
                out.send_raw(b'{"specversion": "1.0", "id": "broken"')
                out.flush()
            for expr in (
                'sum(cxmon_conflicts_total{kind="stalled"})',
                'sum(cxmon_conflicts_total{kind="contradiction"})',
                "sum(cxmon_late_events_total)",
                "sum(cxmon_faust_topic_partition_offset_commited)",
                'sum(cxmon_alert_deliveries_total{outcome="success"})',
                "sum(cxmon_alerts_silenced_total)",
                "sum(cxmon_state_evictions_total)",
                # The four days of backfill are history: counted apart from live latency.
                "sum(cxmon_historical_detections_total)",
            ):
                _wait_for(server, expr, deadline)
            # A hot reload (the files are unchanged): the reload annotation and timestamp.
            worker.process.send_signal(signal.SIGHUP)
            failures = _run_until_all_pass(server, list(queries()), deadline)
            labels = _label_values(f"http://{targets['cxmon-worker'][0]}/metrics")
            labels |= _label_values(f"http://{targets['cxmon-notifier'][0]}/metrics")
    assert not failures, "\n".join(failures)
    private = {e.subject for e in traffic} | {e.id for e in traffic} | {"late-1", "broken"}
    private |= {"silence-probe", "probe-waiver", "probe-charge"}
    private |= {str(v) for e in traffic for k, v in e.data.items() if k.endswith("_id")}
    assert {"billing", "team", SILENCED_RULE} <= labels
    assert not labels & private, f"customer or event ids as label values: {labels & private}"


def _run_until_all_pass(
    server: PrometheusServer, pending: list[Query], deadline: float
) -> list[str]:
    """Run every query until it succeeds with a result (and a positive one where expected)."""
    failures: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        failures.clear()
        still: list[Query] = []
        for query in pending:
            problem = _problem(server, query)
            if problem:
                failures[query.name] = problem
                still.append(query)
        pending = still
        if pending:
            time.sleep(0.5)
    return [f"{name}: {problem}" for name, problem in failures.items()]


def _problem(server: PrometheusServer, query: Query) -> str | None:
    body = server.query(query.promql())
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')} in {query.promql()}"
    result = body["data"]["result"]
    if not result:
        return f"empty result for {query.promql()}"
    if query.panel in POSITIVE and query.ref == "A":
        values = [float(item["value"][1]) for item in result]
        if not any(v > 0 and not math.isnan(v) for v in values):
            return f"all values zero for {query.promql()}: {values}"
    return None
