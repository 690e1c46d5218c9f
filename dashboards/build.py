"""Generate the Grafana dashboards in this folder: `python dashboards/build.py` (`--check`: fail
if a committed file differs from what this script writes).

The JSON files are the product (Grafana imports or provisions them); this script is how they are
written, so that every panel shares one datasource variable, one layout rule and one style.
Edit the panels here, run the script, commit both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from panels import Panel, bars, dashboard, gap_map, row, stat, timeseries

HERE = Path(__file__).resolve().parent

FIRING = 'cxmon_conflicts_total{status="firing"}'
BREACHES = 'cxmon_conflicts_total{kind="stalled",status="firing"}'


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


def gap_overview() -> Panel:
    """Where departments contradict each other, and how often."""
    board = _gap_overview()
    board["links"] = [*board["links"], OPEN_CONFLICTS_LINK]
    return board


def _gap_overview() -> Panel:
    return dashboard(
        "cxmon-gap-overview",
        "cxmon / CX gap overview",
        "Which department pairs contradict each other in front of customers, and how often.",
        [
            stat(
                "Conflicts in range",
                "Firing alerts raised in the selected time range, all rules.",
                f"sum(increase({FIRING}[$__range]))",
                warn_at=1,
            ),
            stat(
                "SLA breaches in range",
                "Stalled handoffs that passed their SLA in the selected time range.",
                f"sum(increase({BREACHES}[$__range]))",
                warn_at=1,
            ),
            stat(
                "Open SLA breaches",
                "Handoffs past their SLA whose follow-up has still not arrived (now).",
                "sum(cxmon_open_breaches)",
                warn_at=1,
            ),
            stat(
                "Rules running",
                "Rules loaded on the worker with the most (all workers run the same files).",
                "max(sum by (instance) (cxmon_rules_loaded))",
            ),
            row("Gap map"),
            gap_map(
                "Gap map: conflicts by department pair",
                "Firing alerts in the selected range. Rows: the department that made the "
                "promise or started the handoff; columns: the department that broke it or "
                "dropped it (a rule's first and last owner).",
                f"sum by (from_department, to_department) (increase({FIRING}[$__range]))",
            ),
            bars(
                "Top rules",
                "The ten rules that fired most in the selected range.",
                f"topk(10, sum by (rule) (increase({FIRING}[$__range])))",
                "{{rule}}",
            ),
            row("Rates"),
            timeseries(
                "Conflict rate by rule and severity",
                "Firing alerts per hour, by rule and severity.",
                (
                    f"3600 * sum by (rule, severity) (rate({FIRING}[$__rate_interval]))",
                    "{{rule}} ({{severity}})",
                ),
                unit="short",
                stacked=True,
            ),
            timeseries(
                "Conflict rate by severity",
                "Firing alerts per hour, by severity.",
                (
                    f"3600 * sum by (severity) (rate({FIRING}[$__rate_interval]))",
                    "{{severity}}",
                ),
                stacked=True,
            ),
            timeseries(
                "SLA breaches by department pair",
                "Stalled handoffs that passed their SLA, per hour, by who handed off to whom.",
                (
                    "3600 * sum by (from_department, to_department) "
                    f"(rate({BREACHES}[$__rate_interval]))",
                    "{{from_department}} → {{to_department}}",
                ),
                stacked=True,
            ),
            timeseries(
                "Resolved conflicts by rule",
                "Resolved updates per hour: a late follow-up arrived or a remediation event "
                "(refund issued, kickoff held) closed the gap.",
                (
                    "3600 * sum by (rule) "
                    '(rate(cxmon_conflicts_total{status="resolved"}[$__rate_interval]))',
                    "{{rule}}",
                ),
                stacked=True,
            ),
        ],
    )


def _quantiles(metric: str, by: str, window: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket[{window}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def handoffs() -> Panel:
    """Handoffs between departments: how many are waiting, late, and how long they take."""
    return dashboard(
        "cxmon-handoffs",
        "cxmon / Handoffs",
        "Handoffs between departments (stalled rules): open, past their SLA, and how long they "
        "take in event time.",
        [
            stat(
                "Open handoffs",
                "Follow-ups being waited for, not yet due.",
                "sum(cxmon_open_expectations)",
            ),
            stat(
                "Open SLA breaches",
                "Handoffs past their SLA whose follow-up has still not arrived.",
                "sum(cxmon_open_breaches)",
                warn_at=1,
            ),
            stat(
                "SLA breaches in range",
                "Handoffs that passed their SLA in the selected range.",
                f"sum(increase({BREACHES}[$__range]))",
                warn_at=1,
            ),
            stat(
                "Handoffs completed in range",
                "Follow-ups that arrived (in time or late) in the selected range.",
                "sum(increase(cxmon_time_to_handoff_seconds_count[$__range]))",
            ),
            timeseries(
                "Open handoffs by rule",
                "Follow-ups being waited for, not yet due, by rule.",
                ("sum by (rule) (cxmon_open_expectations)", "{{rule}}"),
                stacked=True,
            ),
            timeseries(
                "Open SLA breaches by rule",
                "Handoffs past their SLA, still without follow-up, by rule. They leave the "
                "count when the follow-up arrives or the rule's horizon passes.",
                ("sum by (rule) (cxmon_open_breaches)", "{{rule}}"),
                stacked=True,
            ),
            timeseries(
                "SLA breaches by rule",
                "Stalled handoffs that passed their SLA, per hour, by rule.",
                (f"3600 * sum by (rule) (rate({BREACHES}[$__rate_interval]))", "{{rule}}"),
                stacked=True,
            ),
            timeseries(
                "Handoffs completed by rule",
                "Follow-ups arriving per hour, by rule.",
                (
                    "3600 * sum by (rule) "
                    "(rate(cxmon_time_to_handoff_seconds_count[$__rate_interval]))",
                    "{{rule}}",
                ),
            ),
            timeseries(
                "Time to handoff (p50, p90, p99) by rule",
                "Event time from a handoff's first event to its follow-up, over a sliding hour.",
                *_quantiles("cxmon_time_to_handoff_seconds", "rule", "1h"),
                unit="s",
                w=24,
            ),
            bars(
                "Slowest handoffs: p90 time to handoff in range",
                "The 90th percentile of time to handoff over the selected range, by rule.",
                "histogram_quantile(0.9, sum by (rule, le) "
                "(increase(cxmon_time_to_handoff_seconds_bucket[$__range])))",
                "{{rule}}",
                w=24,
            ),
        ],
    )


def monitor_health() -> Panel:
    """Is the monitor itself keeping up: throughput, lag, rejects, latency, delivery, reloads."""
    return dashboard(
        "cxmon-monitor-health",
        "cxmon / Monitor health",
        "The monitor itself: workers, throughput, consumer lag, rejected and late records, "
        "detection latency, alert delivery and rule reloads.",
        [
            stat(
                "Workers ready",
                "Workers that joined their consumer group.",
                "sum(cxmon_worker_ready)",
            ),
            stat(
                "Consumer lag",
                "Records fetched by the brokers but not yet committed, all topics.",
                "sum(clamp_min(cxmon_faust_topic_partition_end_offset"
                " - cxmon_faust_topic_partition_offset_commited, 0))",
                warn_at=1000,
            ),
            stat(
                "Last rule reload",
                "1: the running rules are the files on disk; 0: the last reload failed and "
                "older rules keep running (see the worker log).",
                "min(cxmon_rules_last_reload_successful)",
            ),
            stat(
                "Rejected in range",
                "Records sent to the events dead-letter topic in the selected range.",
                "sum(increase(cxmon_events_rejected_total[$__range]))",
                warn_at=1,
            ),
            row("Throughput and lag"),
            timeseries(
                "Events consumed by department",
                "Events accepted per second, by the department in their source.",
                (
                    "sum by (department) (rate(cxmon_events_consumed_total[$__rate_interval]))",
                    "{{department}}",
                ),
                unit="ops",
                stacked=True,
            ),
            timeseries(
                "Consumer lag by topic",
                "High-water mark minus committed offset, summed over partitions (Faust sensor).",
                (
                    "sum by (topic) (clamp_min(cxmon_faust_topic_partition_end_offset"
                    " - cxmon_faust_topic_partition_offset_commited, 0))",
                    "{{topic}}",
                ),
            ),
            timeseries(
                "Records received by topic",
                "Records the workers' consumers received per second, by topic (Faust sensor).",
                (
                    "sum by (topic) "
                    "(rate(cxmon_faust_messages_received_per_topic_total[$__rate_interval]))",
                    "{{topic}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Stream event runtime (p50, p99)",
                "Time an agent spends on one record (Faust sensor, milliseconds).",
                *[
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        "(rate(cxmon_faust_events_runtime_ms_bucket[$__rate_interval])))",
                        f"p{round(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ],
                unit="ms",
            ),
            row("Rejects and late events"),
            timeseries(
                "Rejected records by reason",
                "Records dead-lettered per second, by reason.",
                (
                    "sum by (reason) (rate(cxmon_events_rejected_total[$__rate_interval]))",
                    "{{reason}}",
                ),
                unit="ops",
                stacked=True,
            ),
            timeseries(
                "Late and out-of-order events by department",
                "Late: older than the watermark minus the lateness, dead-lettered. Out of order: "
                "accepted, but older than an event already seen on the partition.",
                (
                    "sum by (department) (rate(cxmon_late_events_total[$__rate_interval]))",
                    "late {{department}}",
                ),
                (
                    "sum by (department) (rate(cxmon_events_out_of_order_total[$__rate_interval]))",
                    "out of order {{department}}",
                ),
                unit="ops",
            ),
            row("Detection"),
            timeseries(
                "Detection latency (p50, p90, p99) by kind",
                "Wall time from the conflict (its event time, or the deadline) to the alert.",
                *_quantiles("cxmon_detection_latency_seconds", "kind", "$__rate_interval"),
                unit="s",
            ),
            timeseries(
                "Alerts published and rule errors",
                "Alerts written to the alerts topic per second by status; CEL evaluation "
                "errors (counted as no match) by rule; duplicate deliveries skipped.",
                (
                    "sum by (status) (rate(cxmon_alerts_published_total[$__rate_interval]))",
                    "published {{status}}",
                ),
                (
                    "sum by (rule) (rate(cxmon_rule_eval_errors_total[$__rate_interval]))",
                    "eval errors {{rule}}",
                ),
                (
                    "sum(rate(cxmon_duplicate_deliveries_total[$__rate_interval]))",
                    "duplicates skipped",
                ),
                unit="ops",
            ),
            row("Alert delivery (notifier)"),
            timeseries(
                "Deliveries by channel and outcome",
                "Notification attempts per second by channel type and outcome.",
                (
                    "sum by (channel, outcome) "
                    "(rate(cxmon_alert_deliveries_total[$__rate_interval]))",
                    "{{channel}} {{outcome}}",
                ),
                unit="ops",
                stacked=True,
            ),
            timeseries(
                "Delivery latency (p50, p90, p99) by receiver",
                "Wall time from detection to a successful delivery.",
                *_quantiles("cxmon_alert_delivery_latency_seconds", "receiver", "$__rate_interval"),
                unit="s",
            ),
            *[
                stat(title, description, expr, w=4, warn_at=warn)
                for title, description, expr, warn in (
                    (
                        "Delivery failures in range",
                        "Failed notification attempts (each may be retried).",
                        'sum(increase(cxmon_alert_deliveries_total{outcome="failure"}[$__range]))',
                        1,
                    ),
                    (
                        "Dead-lettered alerts in range",
                        "Alerts that still failed after the last retry (alerts dead-letter topic).",
                        "sum(increase(cxmon_alerts_dead_lettered_total[$__range]))",
                        1,
                    ),
                    (
                        "Delivery retries in range",
                        "Failed attempts that were scheduled again.",
                        "sum(increase(cxmon_alert_delivery_retries_total[$__range]))",
                        None,
                    ),
                    (
                        "Silenced alerts in range",
                        "Alerts matched by a silence and not sent.",
                        "sum(increase(cxmon_alerts_silenced_total[$__range]))",
                        None,
                    ),
                    (
                        "Silences active",
                        "Silences currently in force.",
                        "max(cxmon_silences_active)",
                        None,
                    ),
                    (
                        "Alerts received in range",
                        "Alerts the notifier read from the alerts topic.",
                        "sum(increase(cxmon_notifier_alerts_received_total[$__range]))",
                        None,
                    ),
                )
            ],
            row("Rules"),
            timeseries(
                "Rules loaded by kind",
                "Rules running, by kind (the worker with the most).",
                ("max by (kind) (cxmon_rules_loaded)", "{{kind}}"),
                stacked=True,
            ),
            timeseries(
                "Rule reloads by outcome",
                "Rule loads in the last hour, by outcome; a failure keeps the old rules running.",
                ("sum by (outcome) (increase(cxmon_rule_reloads_total[1h]))", "{{outcome}}"),
            ),
        ],
    )


DASHBOARDS = {
    "cx-gap-overview.json": gap_overview,
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
