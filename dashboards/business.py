"""The team leads' dashboards: where the department gaps are, and how handoffs keep their SLAs.

A team lead asks "which department pair fails customers most this week, and is it better than
last week?". So: counts (not per-second rates) over the selected range, 7 days by default, in
hour or day buckets; whole numbers; the earlier period (`$compare`, a week by default) beside
this one; and from/to department and rule variables, with links from a gap-map cell or a rule
to the view filtered by it, keeping the time range.
"""

from __future__ import annotations

from panels import (
    NEUTRAL,
    Panel,
    annotation,
    bars,
    compare_variable,
    comparison,
    dashboard,
    gap_map,
    link,
    query_variable,
    row,
    stat,
    timeseries,
)

GAP = 'from_department=~"$from_department",to_department=~"$to_department"'
RULE = 'rule=~"$rule"'
FIRING = f'cxmon_conflicts_total{{status="firing",{RULE},{GAP}}}'
RESOLVED = f'cxmon_conflicts_total{{status="resolved",{RULE},{GAP}}}'
BREACHES = f'cxmon_conflicts_total{{kind="stalled",status="firing",{RULE},{GAP}}}'
EARLIER = "${compare:text}"  # "a week earlier": the chosen option's text
KEEP = "${datasource:queryparam}&${__url_time_range}"
# In a table the clicked cell is the rule (`__value`); in a bar gauge each bar is a series.
BY_RULE = link("Show only this rule", f"/d/cxmon-gap-overview/?var-rule=${{__value.raw}}&{KEEP}")
BY_RULE_BAR = link(
    "Show only this rule", f"/d/cxmon-gap-overview/?var-rule=${{__field.labels.rule}}&{KEEP}"
)
HANDOFF_RULE = link(
    "Show only this handoff", f"/d/cxmon-handoffs/?var-rule=${{__value.raw}}&{KEEP}"
)
HANDOFF_RULE_BAR = link(
    "Show only this handoff", f"/d/cxmon-handoffs/?var-rule=${{__field.labels.rule}}&{KEEP}"
)
BY_PAIR = link(
    "Show only this department pair",
    "/d/cxmon-gap-overview/?var-from_department=${__data.fields[0]}"
    f"&var-to_department=${{__field.name}}&{KEEP}",
)


def _variables(kind: str = "") -> list[Panel]:
    """From/to department, then the rules of the chosen pairs, then the comparison period."""
    only = f'kind="{kind}",' if kind else ""
    return [
        query_variable(
            "from_department",
            "From department",
            "label_values(cxmon_conflicts_total, from_department)",
        ),
        query_variable(
            "to_department",
            "To department",
            'label_values(cxmon_conflicts_total{from_department=~"$from_department"}, '
            "to_department)",
        ),
        query_variable("rule", "Rule", f"label_values(cxmon_conflicts_total{{{only}{GAP}}}, rule)"),
        compare_variable(),
    ]


def _reloads() -> Panel:
    return annotation(
        "Rule reloads",
        "sum by (outcome) (increase(cxmon_rule_reloads_total[2m])) > 0",
        "Rules reloaded ({{outcome}})",
        "Counts before and after may differ because the rules changed.",
        "purple",
    )


def _now_and_before(expr: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """A range count now and `${compare:text}` earlier, rounded: increase() extrapolates (2.18 for 2)."""
    return (
        (f"round(sum(increase({expr}[$__range])))", "this period"),
        (f"round(sum(increase({expr}[$__range] offset $compare)))", EARLIER),
    )


def gap_overview() -> Panel:
    """Where departments contradict each other, and how often."""
    return dashboard(
        "cxmon-gap-overview",
        "cxmon / CX gap overview",
        "Which department pairs contradict each other in front of customers, and how often, "
        "against an earlier period. Counts of alerts raised (firing) in the selected range.",
        [
            stat(
                "Conflicts",
                "Firing alerts raised in the selected range, and in the same range ${compare:text} "
                "earlier.",
                *_now_and_before(FIRING),
                steps=NEUTRAL,
            ),
            stat(
                "SLA breaches",
                "Stalled handoffs that passed their SLA in the selected range, and ${compare:text} "
                "earlier.",
                *_now_and_before(BREACHES),
                steps=NEUTRAL,
            ),
            stat(
                "Open SLA breaches",
                "Handoffs past their SLA whose follow-up has still not arrived (now).",
                (f"sum(cxmon_open_breaches{{{RULE}}})", ""),
                warn_at=1,
            ),
            stat(
                "Rules running",
                "Rules loaded on the worker with the most (all workers run the same files).",
                ("max(sum by (instance) (cxmon_rules_loaded))", ""),
                steps=[("red", None), ("green", 1)],
            ),
            row("Gap map"),
            gap_map(
                "Gap map: conflicts by department pair",
                "Firing alerts in the selected range. Rows: the department that made the "
                "promise or started the handoff; columns: the department that broke it or "
                "dropped it (a rule's first and last owner). Empty: no rule covers the pair; "
                "0: covered, no conflict. Colours are relative to the largest cell. Click a "
                "cell to see only that pair.",
                f"round(sum by (from_department, to_department) (increase({FIRING}[$__range])))",
                links=[BY_PAIR],
            ),
            gap_map(
                "Gap map, ${compare:text}",
                "The same map for the same length of time, ${compare:text}.",
                "round(sum by (from_department, to_department) "
                f"(increase({FIRING}[$__range] offset $compare)))",
                links=[BY_PAIR],
            ),
            bars(
                "Top rules",
                "The ten rules that fired most in the selected range. Click a bar to see only "
                "that rule.",
                f"topk(10, round(sum by (rule) (increase({FIRING}[$__range]))))",
                "{{rule}}",
                links=[BY_RULE_BAR],
            ),
            comparison(
                "Rules: this period and ${compare:text}",
                "Firing alerts by rule in the selected range and in the same range ${compare:text}. "
                "Click a rule to see only it.",
                f"round(sum by (rule) (increase({FIRING}[$__range])))",
                f"round(sum by (rule) (increase({FIRING}[$__range] offset $compare)))",
                by="rule",
                before_name="earlier period",
                links=[BY_RULE],
            ),
            row("Over time"),
            timeseries(
                "Conflicts per day, this period and ${compare:text}",
                "Firing alerts per day (bars) and per day ${compare:text} (dashed line).",
                (f"round(sum(increase({FIRING}[$__interval])))", "this period"),
                (f"round(sum(increase({FIRING}[$__interval] offset $compare)))", EARLIER),
                bars="1d",
                decimals=0,
                dashed="B",
                w=24,
            ),
            timeseries(
                "Conflicts per hour by rule",
                "Firing alerts in each hour (or longer bucket on long ranges), by rule.",
                (f"round(sum by (rule) (increase({FIRING}[$__interval])))", "{{rule}}"),
                bars="1h",
                decimals=0,
                stacked=True,
            ),
            timeseries(
                "Conflicts per day by severity",
                "Firing alerts per day, by severity.",
                (f"round(sum by (severity) (increase({FIRING}[$__interval])))", "{{severity}}"),
                bars="1d",
                decimals=0,
                stacked=True,
            ),
            timeseries(
                "SLA breaches per day by department pair",
                "Stalled handoffs that passed their SLA per day, by who handed off to whom.",
                (
                    "round(sum by (from_department, to_department) "
                    f"(increase({BREACHES}[$__interval])))",
                    "{{from_department}} → {{to_department}}",
                ),
                bars="1d",
                decimals=0,
                stacked=True,
            ),
            timeseries(
                "Resolved conflicts per day by rule",
                "Resolved updates per day: a late follow-up arrived or a remediation event "
                "(refund issued, kickoff held) closed the gap.",
                (f"round(sum by (rule) (increase({RESOLVED}[$__interval])))", "{{rule}}"),
                bars="1d",
                decimals=0,
                stacked=True,
            ),
        ],
        variables=_variables(),
        annotations=[_reloads()],
        time_from="now-7d",
        refresh="5m",
    )


IN_TIME = f"cxmon_handoffs_in_time_total{{{RULE}}}"
HANDOFF = "cxmon_time_to_handoff_seconds"


def _within_sla(by: str, offset: str = "") -> str:
    """Handoffs in time / (in time + breaches): every handoff ends one way or the other."""
    group = f"sum by ({by}) " if by else "sum "
    in_time = f"{group}(increase({IN_TIME}[$__range]{offset}))"
    breaches = f"{group}(increase({BREACHES}[$__range]{offset}))"
    decided = f"({in_time} + {breaches})"
    return f"{in_time} / {decided} and {decided} > 0"


def handoffs() -> Panel:
    """Handoffs between departments: how many are waiting, late, and how long they take."""
    quantiles = [
        (
            f"histogram_quantile({q}, sum by (rule, le) "
            f"(increase({HANDOFF}_bucket{{{RULE}}}[$__interval])))",
            f"p{round(q * 100)} {{{{rule}}}}",
        )
        for q in (0.5, 0.9)
    ]
    return dashboard(
        "cxmon-handoffs",
        "cxmon / Handoffs",
        "Handoffs between departments (stalled rules): how many keep their SLA, how many are "
        "waiting or past it, and how long they take in event time.",
        [
            stat(
                "Within SLA",
                "Handoffs whose follow-up arrived by the deadline, as a share of those decided "
                "in the range (in time + SLA breaches); and ${compare:text}.",
                (_within_sla(""), "this period"),
                (_within_sla("", " offset $compare"), EARLIER),
                unit="percentunit",
                decimals=1,
                steps=[("red", None), ("orange", 0.8), ("green", 0.95)],
            ),
            stat(
                "SLA breaches",
                "Handoffs that passed their SLA in the selected range; and ${compare:text}.",
                *_now_and_before(BREACHES),
                steps=NEUTRAL,
            ),
            stat(
                "Open SLA breaches",
                "Handoffs past their SLA whose follow-up has still not arrived (now).",
                (f"sum(cxmon_open_breaches{{{RULE}}})", ""),
                warn_at=1,
            ),
            stat(
                "Oldest open breach",
                "How long past its deadline the oldest handoff still without follow-up is.",
                (f"max(cxmon_oldest_open_breach_age_seconds{{{RULE}}})", ""),
                unit="s",
                decimals=None,
                steps=[("green", None), ("orange", 1), ("red", 86400)],
            ),
            stat(
                "Open handoffs",
                "Follow-ups being waited for, not yet due (now).",
                (f"sum(cxmon_open_expectations{{{RULE}}})", ""),
                steps=NEUTRAL,
            ),
            stat(
                "Handoffs completed",
                "Follow-ups that arrived (in time or late) in the selected range; and ${compare:text} "
                "earlier.",
                *_now_and_before(f"{HANDOFF}_count{{{RULE}}}"),
                steps=NEUTRAL,
                w=18,
            ),
            row("By rule"),
            comparison(
                "Within SLA by rule: this period and ${compare:text}",
                "Per rule, handoffs in time as a share of those decided (in time + breaches). "
                "Empty: no handoff decided in the period. Click a rule to see only it.",
                _within_sla("rule"),
                _within_sla("rule", " offset $compare"),
                by="rule",
                before_name="earlier period",
                unit="percentunit",
                decimals=1,
                links=[HANDOFF_RULE],
            ),
            bars(
                "Oldest open breach by rule",
                "How long past its deadline each rule's oldest handoff without follow-up is "
                "(0: none open).",
                f"max by (rule) (cxmon_oldest_open_breach_age_seconds{{{RULE}}})",
                "{{rule}}",
                unit="s",
                decimals=None,
                links=[HANDOFF_RULE_BAR],
            ),
            bars(
                "Time to handoff in range: p90 by rule",
                "The 90th percentile of the time from a handoff's first event to its "
                "follow-up, over the selected range (event time).",
                f"histogram_quantile(0.9, sum by (rule, le) "
                f"(increase({HANDOFF}_bucket{{{RULE}}}[$__range])))",
                "{{rule}}",
                unit="s",
                decimals=None,
                links=[HANDOFF_RULE_BAR],
            ),
            comparison(
                "SLA breaches by rule: this period and ${compare:text}",
                "Handoffs that passed their SLA, by rule. Click a rule to see only it.",
                f"round(sum by (rule) (increase({BREACHES}[$__range])))",
                f"round(sum by (rule) (increase({BREACHES}[$__range] offset $compare)))",
                by="rule",
                before_name="earlier period",
                links=[HANDOFF_RULE],
            ),
            row("Over time"),
            timeseries(
                "Time to handoff by day (p50, p90) by rule",
                "Per day, the median and 90th percentile time from first event to follow-up "
                "of the handoffs completed that day (a gap: none that day).",
                *quantiles,
                unit="s",
                interval="1d",
                w=24,
            ),
            timeseries(
                "SLA breaches per day by rule",
                "Handoffs that passed their SLA, per day.",
                (f"round(sum by (rule) (increase({BREACHES}[$__interval])))", "{{rule}}"),
                bars="1d",
                decimals=0,
                stacked=True,
            ),
            timeseries(
                "Handoffs completed per day by rule",
                "Follow-ups that arrived, per day (in time or late).",
                (
                    f"round(sum by (rule) (increase({HANDOFF}_count{{{RULE}}}[$__interval])))",
                    "{{rule}}",
                ),
                bars="1d",
                decimals=0,
                stacked=True,
            ),
            timeseries(
                "Open handoffs by rule",
                "Follow-ups being waited for, not yet due, by rule.",
                (f"sum by (rule) (cxmon_open_expectations{{{RULE}}})", "{{rule}}"),
                stacked=True,
            ),
            timeseries(
                "Open SLA breaches by rule",
                "Handoffs past their SLA, still without follow-up, by rule. They leave the "
                "count when the follow-up arrives or the rule's horizon passes.",
                (f"sum by (rule) (cxmon_open_breaches{{{RULE}}})", "{{rule}}"),
                stacked=True,
            ),
        ],
        variables=_variables("stalled"),
        annotations=[_reloads()],
        time_from="now-7d",
        refresh="5m",
    )
