"""The platform team's dashboard: is the monitor working, and should someone get up?

Namespace, job and instance variables keep staging and production in one Prometheus apart
(every query selects by them; "All" also matches series without the label). Stats turn red
when something is wrong, including a 0 where there should be workers. Annotations mark rule
reloads, process starts and version changes, and monitor alerts firing.
"""

from __future__ import annotations

from panels import (
    RED_BELOW_ONE,
    Panel,
    annotation,
    dashboard,
    query_variable,
    row,
    stat,
    timeseries,
)

S = 'namespace=~"$namespace",job=~"$job",instance=~"$instance"'


def _m(name: str, matchers: str = "") -> str:
    """A selector of one metric within the chosen namespace/job/instance."""
    return f"{name}{{{S}{',' + matchers if matchers else ''}}}"


LAG = (
    f"clamp_min({_m('cxmon_faust_topic_partition_end_offset')}"
    f" - {_m('cxmon_faust_topic_partition_offset_commited')}, 0)"
)
GAVE_UP = _m("cxmon_alert_deliveries_total", 'outcome="failure"')
ATTEMPTS = _m("cxmon_alert_deliveries_total", 'outcome!="dead_lettered"')


def _quantiles(metric: str, by: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate({_m(metric + '_bucket')}[$__rate_interval])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def _variables() -> list[Panel]:
    return [
        query_variable("namespace", "Namespace", "label_values(cxmon_build_info, namespace)"),
        query_variable(
            "job", "Job", 'label_values(cxmon_build_info{namespace=~"$namespace"}, job)'
        ),
        query_variable(
            "instance",
            "Instance",
            'label_values(cxmon_build_info{namespace=~"$namespace",job=~"$job"}, instance)',
        ),
    ]


def _annotations() -> list[Panel]:
    return [
        annotation(
            "Rule reloads",
            f"sum by (job, instance, outcome) (increase({_m('cxmon_rule_reloads_total')}[2m])) > 0",
            "Rule reload: {{outcome}}",
            "{{instance}}",
            "purple",
            "outcome",
        ),
        annotation(
            "Process starts",
            f"time() - {_m('process_start_time_seconds')} < 120",
            "Started: {{job}}",
            "{{instance}}",
            "blue",
            "job",
        ),
        annotation(
            "Version changes",
            f"count by (job, version) ({_m('cxmon_build_info')}) unless count by (job, version) "
            f"({_m('cxmon_build_info')} offset 10m)",
            "Version {{version}}",
            "{{job}} runs a version it did not run 10 minutes before",
            "green",
            "version",
        ),
        annotation(
            "Monitor alerts",
            'ALERTS{alertname=~"Cxmon.*",alertstate="firing"}',
            "{{alertname}} ({{severity}})",
            "{{instance}}",
            "red",
            "alertname,severity",
        ),
    ]


def _delivery_stats() -> list[Panel]:
    rows = (
        (
            "Deliveries that gave up",
            "Deliveries that failed for good in the selected range (not retryable, or still "
            "failing at the retry horizon); each gave-up group is also dead-lettered.",
            f"round(sum(increase({GAVE_UP}[$__range])))",
            1,
        ),
        (
            "Dead-lettered alerts",
            "Alerts written to the alerts dead-letter topic in the selected range.",
            f"round(sum(increase({_m('cxmon_alerts_dead_lettered_total')}[$__range])))",
            1,
        ),
        (
            "Delivery retries",
            "Failed attempts that were scheduled again, in the selected range.",
            f"round(sum(increase({_m('cxmon_alert_delivery_retries_total')}[$__range])))",
            None,
        ),
        (
            "Silenced alerts",
            "Alerts matched by a silence and not sent, in the selected range.",
            f"round(sum(increase({_m('cxmon_alerts_silenced_total')}[$__range])))",
            None,
        ),
        (
            "Silences active",
            "Silences currently in force.",
            f"max({_m('cxmon_silences_active')})",
            None,
        ),
        (
            "Alerts received",
            "Alerts the notifiers read from the alerts topic in the selected range.",
            f"round(sum(increase({_m('cxmon_notifier_alerts_received_total')}[$__range])))",
            None,
        ),
    )
    return [stat(t, d, (e, ""), w=4, warn_at=warn) for t, d, e, warn in rows]


def monitor_health() -> Panel:
    """Is the monitor itself keeping up: throughput, lag, rejects, latency, delivery, reloads."""
    return dashboard(
        "cxmon-monitor-health",
        "cxmon / Monitor health",
        "The monitor itself: workers and notifiers, throughput, lag, rejected and late "
        "records, detection latency, rule errors, alert delivery, rule reloads and processes.",
        [
            stat(
                "Workers ready",
                "Workers that joined their consumer group and recovered their state. Red at 0: "
                "no conflict is being detected.",
                (f"sum({_m('cxmon_worker_ready')})", ""),
                steps=RED_BELOW_ONE,
                w=4,
            ),
            stat(
                "Notifiers ready",
                "Notifiers that joined their group and read the silences. Red at 0: no alert "
                "reaches the teams.",
                (f"sum({_m('cxmon_notifier_ready')})", ""),
                steps=RED_BELOW_ONE,
                w=4,
            ),
            stat(
                "Rules load",
                "OK: every worker runs the rule files on disk. FAILED: the last reload on some "
                "worker failed and it keeps running older rules (see its log).",
                (f"min({_m('cxmon_rules_last_reload_successful')})", ""),
                steps=RED_BELOW_ONE,
                mappings={"0": "FAILED", "1": "OK"},
                w=4,
            ),
            stat(
                "Last successful rule reload",
                "When the rules last loaded without error (at start or a hot reload), on the "
                "worker that did it most recently.",
                (f"max({_m('cxmon_rules_last_reload_timestamp_seconds')}) * 1000", ""),
                unit="dateTimeFromNow",
                decimals=None,
                w=4,
            ),
            stat(
                "Consumer lag",
                "Records fetched by the brokers but not yet committed, all topics (workers and "
                "notifiers).",
                (f"sum({LAG})", ""),
                warn_at=1000,
                w=4,
            ),
            stat(
                "Oldest undelivered alert",
                "Since detection, the oldest alert a notifier holds without having delivered "
                "or dead-lettered it. Red from 15 minutes (the page).",
                (f"max({_m('cxmon_notifier_oldest_pending_alert_age_seconds')})", ""),
                unit="s",
                decimals=None,
                steps=[("green", None), ("orange", 300), ("red", 900)],
                w=4,
            ),
            stat(
                "Rejected in range",
                "Records sent to the events dead-letter topic in the selected range.",
                (f"round(sum(increase({_m('cxmon_events_rejected_total')}[$__range])))", ""),
                warn_at=1,
                w=4,
            ),
            stat(
                "Restarts in range",
                "Worker and notifier process starts in the selected range, beyond the first.",
                (f"sum(changes({_m('process_start_time_seconds')}[$__range]))", ""),
                steps=[("green", None), ("orange", 1), ("red", 3)],
                w=4,
            ),
            stat(
                "Versions running",
                "Processes by component and cxmon version.",
                (
                    f"count by (component, version) ({_m('cxmon_build_info')})",
                    "{{component}} {{version}}",
                ),
                steps=[("blue", None)],
                w=8,
            ),
            stat(
                "Pending deliveries",
                "Alerts read by the notifiers and not yet delivered or dead-lettered.",
                (f"sum({_m('cxmon_notifier_pending_alerts')})", ""),
                steps=[("green", None)],
                w=8,
            ),
            row("Throughput and lag"),
            timeseries(
                "Events consumed by department",
                "Events accepted per second, by the department in their source.",
                (
                    "sum by (department) "
                    f"(rate({_m('cxmon_events_consumed_total')}[$__rate_interval]))",
                    "{{department}}",
                ),
                unit="ops",
                stacked=True,
            ),
            timeseries(
                "Consumer lag by topic",
                "High-water mark minus committed offset, summed over partitions (Faust "
                "sensor), by job and topic: the workers' input topics and the notifiers' "
                "alerts topic.",
                (f"sum by (job, topic) ({LAG})", "{{job}} {{topic}}"),
            ),
            timeseries(
                "Watermark lag by partition",
                "Wall clock minus the event-time watermark of each input partition: how far "
                "behind real time the newest event seen is. Grows when a partition's "
                "producers stop or the workers fall behind.",
                (
                    f"max by (partition) ({_m('cxmon_watermark_lag_seconds')})",
                    "partition {{partition}}",
                ),
                unit="s",
            ),
            timeseries(
                "Deadlines held back by a backlog",
                "Wall clock minus the moment up to which each worker's last sweep breached "
                "deadlines: about two seconds live; while a worker reads a backlog, how far its "
                "event time is behind, so a follow-up further down is not breached before it is "
                "read (docs/rules.md, Time). A worker whose input is not fetched yet shows none.",
                (
                    f"max by (instance) (time() - ({_m('cxmon_deadline_clock_timestamp_seconds')}"
                    " > 0))",
                    "{{instance}}",
                ),
                unit="s",
            ),
            timeseries(
                "Changelog writes not confirmed",
                "State writes each worker made that the broker has not confirmed yet. The "
                "input offsets behind them wait, so a value that stays high (and the commits "
                "with it) means the changelog or the broker cannot keep up; a catch-up shows "
                "short peaks.",
                (f"max by (instance) ({_m('cxmon_changelog_unsent_writes')})", "{{instance}}"),
            ),
            timeseries(
                "Records received by topic",
                "Records the consumers received per second, by topic (Faust sensor).",
                (
                    "sum by (topic) (rate("
                    f"{_m('cxmon_faust_messages_received_per_topic_total')}[$__rate_interval]))",
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
                        f"(rate({_m('cxmon_faust_events_runtime_ms_bucket')}[$__rate_interval])))",
                        f"p{round(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ],
                unit="ms",
                w=24,
            ),
            row("Rejects and late events"),
            timeseries(
                "Rejected records by reason",
                "Records dead-lettered per second, by reason.",
                (
                    "sum by (reason) "
                    f"(rate({_m('cxmon_events_rejected_total')}[$__rate_interval]))",
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
                    f"sum by (department) (rate({_m('cxmon_late_events_total')}[$__rate_interval]))",
                    "late {{department}}",
                ),
                (
                    "sum by (department) "
                    f"(rate({_m('cxmon_events_out_of_order_total')}[$__rate_interval]))",
                    "out of order {{department}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Source mappings: skipped and failed records by topic",
                "Records of raw departmental topics (docs/sources.md) that the mapping's `when` "
                "skipped, and those that failed their mapping (dead-lettered as mapping_failed), "
                "by topic and the field that failed.",
                (
                    f"sum by (topic) (rate({_m('cxmon_mapping_skipped_total')}[$__rate_interval]))",
                    "skipped {{topic}}",
                ),
                (
                    "sum by (topic, field) "
                    f"(rate({_m('cxmon_mapping_failures_total')}[$__rate_interval]))",
                    "failed {{topic}} ({{field}})",
                ),
                unit="ops",
            ),
            row("Detection"),
            timeseries(
                "Detection latency (p50, p90, p99) by kind",
                "Wall time from the conflict (its event time, or the deadline) to the alert, "
                "for live conflicts only: replayed, backfilled or caught-up history older than "
                "the live horizon (15 min) is counted apart (next panel).",
                *_quantiles("cxmon_detection_latency_seconds", "kind"),
                unit="s",
            ),
            timeseries(
                "Alerts published and history detected",
                "Alerts written to the alerts topic per second by status; and firing alerts "
                "for conflicts older than the live horizon (a replay, a backfill, a catch-up), "
                "kept out of the latency.",
                (
                    "sum by (status) "
                    f"(rate({_m('cxmon_alerts_published_total')}[$__rate_interval]))",
                    "published {{status}}",
                ),
                (
                    "sum by (kind) "
                    f"(rate({_m('cxmon_historical_detections_total')}[$__rate_interval]))",
                    "history {{kind}}",
                ),
                unit="ops",
            ),
            timeseries(
                "Rule evaluation errors by rule (15 min)",
                "Conditions that failed on an event in the last 15 minutes (counted as no "
                "match: the rule misses conflicts). Red line: the alert's threshold; a "
                "producer's schema change shows here first.",
                (
                    f"sum by (rule) (increase({_m('cxmon_rule_eval_errors_total')}[15m]))",
                    "{{rule}}",
                ),
                threshold=5,
                decimals=0,
            ),
            timeseries(
                "State evictions by rule (15 min)",
                "State entries dropped in the last 15 minutes because one customer went over "
                "max_state_entries: conflicts are being missed above 0.",
                (
                    f"sum by (rule) (increase({_m('cxmon_state_evictions_total')}[15m]))",
                    "{{rule}}",
                ),
                threshold=1,
                decimals=0,
            ),
            timeseries(
                "Duplicate deliveries skipped",
                "Rule evaluations skipped per second because the event's source+id was already "
                "processed (producers deliver at least once).",
                (
                    f"sum(rate({_m('cxmon_duplicate_deliveries_total')}[$__rate_interval]))",
                    "duplicates",
                ),
                unit="ops",
                w=24,
                h=6,
            ),
            row("Alert delivery (notifier)"),
            timeseries(
                "Deliveries by channel and outcome",
                "Notification attempts per second. success; retry: failed, tried again; "
                "failure: gave up (not retryable, or past the retry horizon). Dead-lettered "
                "alerts are the same give-ups, counted per alert below, not stacked here.",
                (
                    f"sum by (channel, outcome) (rate({ATTEMPTS}[$__rate_interval]))",
                    "{{channel}} {{outcome}}",
                ),
                unit="ops",
                stacked=True,
            ),
            timeseries(
                "Delivery latency (p50, p90, p99) by receiver",
                "Wall time from detection to a successful delivery, retries included (up to "
                "the retry horizon).",
                *_quantiles("cxmon_alert_delivery_latency_seconds", "receiver"),
                unit="s",
            ),
            timeseries(
                "Notifier lag on the alerts topic",
                "Alerts on the alerts topic not yet committed by the notifiers (an alert is "
                "committed once delivered or dead-lettered), by instance.",
                (
                    f"sum by (instance) ({LAG} and on (namespace, job, instance) "
                    f"{_m('cxmon_notifier_ready')})",
                    "{{instance}}",
                ),
            ),
            timeseries(
                "Pending deliveries",
                "Alerts each notifier read and has not yet delivered or dead-lettered (waiting "
                "in a group, or retrying).",
                (f"sum by (instance) ({_m('cxmon_notifier_pending_alerts')})", "{{instance}}"),
                decimals=0,
            ),
            timeseries(
                "Oldest undelivered alert",
                "Since detection, the age of the oldest alert each notifier holds undelivered. "
                "Red line at 15 minutes: the page (CxmonNotifierBacklog).",
                (
                    f"max by (instance) ({_m('cxmon_notifier_oldest_pending_alert_age_seconds')})",
                    "{{instance}}",
                ),
                unit="s",
                threshold=900,
            ),
            *_delivery_stats(),
            row("Rules"),
            timeseries(
                "Rules loaded by kind",
                "Rules running, by kind (the worker with the most).",
                (f"max by (kind) ({_m('cxmon_rules_loaded')})", "{{kind}}"),
                stacked=True,
            ),
            timeseries(
                "Rule reloads by outcome",
                "Rule loads in the last hour, by outcome; a failure keeps the old rules running.",
                (
                    f"sum by (outcome) (increase({_m('cxmon_rule_reloads_total')}[1h]))",
                    "{{outcome}}",
                ),
                decimals=0,
            ),
            row("Processes"),
            timeseries(
                "Resident memory",
                "Resident memory of each worker and notifier process.",
                (f"{_m('process_resident_memory_bytes')}", "{{job}} {{instance}}"),
                unit="bytes",
            ),
            timeseries(
                "CPU",
                "CPU time per second of each process (1 = one core).",
                (
                    f"rate({_m('process_cpu_seconds_total')}[$__rate_interval])",
                    "{{job}} {{instance}}",
                ),
                unit="percentunit",
            ),
        ],
        variables=_variables(),
        annotations=_annotations(),
    )
