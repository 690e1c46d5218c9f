"""Rule-author commands: `cxmon replay` (backtest, with a baseline diff) and `cxmon test` (rule tests)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.history import parse_moment, progress, topic_lines
from cli.render import print_issues
from cli.sources import raw_decoder
from monitor.alerts import Alert
from monitor.authoring.replay import ReplayResult, diff_alerts, replay
from monitor.authoring.ruletests import collect_test_files, parse_offset, run_test_file
from monitor.config.testfiles import TestFileResult
from monitor.engine.ruleset import Ruleset
from monitor.events import EventRef
from monitor.rules import LoadResult, load_rules
from monitor.settings import Settings
from monitor.sources.mappingtests import is_mapping_test, run_mapping_tests

FORMATS = ("table", "jsonl", "json")  # json: an alias of jsonl (JSON Lines)
STATUS_STYLE = {"firing": "red", "resolved": "green"}
PIPED_WIDTH = 400


def register(app: typer.Typer) -> None:
    """Add `replay` and `test` to the root command."""
    app.command("replay")(replay_command)
    app.command("test")(test_command)


def replay_command(
    events: Annotated[
        Path | None, typer.Argument(help="JSON Lines of CloudEvents ('-' for stdin)")
    ] = None,
    rules: Annotated[Path, typer.Option(help="rule files or directory")] = Path("rules"),
    output: Annotated[
        str, typer.Option("--format", help="table or jsonl (one alert per line; json: the same)")
    ] = "table",
    lateness: Annotated[
        str, typer.Option(help="accepted out-of-order delay, e.g. 5m (0 for none)")
    ] = "5m",
    baseline: Annotated[
        Path | None,
        typer.Option(help="rules to compare with: print the alerts RULES add (+) and remove (-)"),
    ] = None,
    as_topic: Annotated[
        str | None,
        typer.Option(help="the lines are raw records of this topic: map them with its mapping"),
    ] = None,
    records: Annotated[
        bool,
        typer.Option(help='with --as-topic: lines are {"key", "value", "headers", "timestamp"}'),
    ] = False,
    sources: Annotated[
        Path | None, typer.Option(help="mapping directory (default: CXMON_SOURCES_PATH)")
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(help="read the topic's retained history instead of a file, e.g. cx.events"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="with --topic: start, 7d back or 2026-05-01T00:00:00Z")
    ] = None,
    until: Annotated[str | None, typer.Option(help="with --topic: end (default: now)")] = None,
) -> None:
    """Backtest rules on recorded events (a file, or a topic's history): the alerts they would have raised, counts per rule."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=True, width=PIPED_WIDTH)  # rows stay whole lines
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if output not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}", param_hint="--format")
    try:
        delay = parse_offset(lateness)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lateness") from None
    _check_sources(events, topic, since, until, records=records, as_topic=as_topic)
    candidate = _load(rules, err)
    old = _load(baseline, err) if baseline is not None else None
    if candidate is None or (baseline is not None and old is None):
        raise typer.Exit(1)
    decode_line = _topic_decoder(as_topic, sources, records=records, err=err)
    lines: list[bytes] = []
    if topic is not None and since is not None:
        start = parse_moment(since, "--since")
        end = parse_moment(until, "--until") if until is not None else None
        with topic_lines(topic, start, end, records=as_topic is not None, err=err) as read:
            if baseline is not None:  # read twice: keep it
                lines = list(read)
                read = iter(lines)
            result = _run(candidate, read, delay, decode_line)
    elif events is not None:
        lines = _read_lines(events)
        result = _run(candidate, progress(lines, err, str(events), len(lines)), delay, decode_line)
    if old is None:
        if result.alerts:
            _print_alerts(result.alerts, output, out)
        _print_summary(candidate, result, err)
    else:
        before = _run(old, lines, delay, decode_line)
        diff = diff_alerts(result.alerts, before.alerts)
        changes = [("+", a) for a in diff.added] + [("-", a) for a in diff.removed]
        if changes:
            _print_changes(changes, output, out)
        _print_summary(candidate, result, err)
        err.print(
            f"vs baseline {baseline}: [green]+{len(diff.added)}[/green] added, "
            f"[red]-{len(diff.removed)}[/red] removed, {diff.unchanged} unchanged "
            f"({len(before.alerts)} -> {len(result.alerts)} alerts)"
        )
    _print_rejected(result, err)


def _topic_decoder(
    as_topic: str | None, sources: Path | None, *, records: bool, err: Console
) -> Callable[[bytes], EventRef | None] | None:
    """With --as-topic, the mapping that turns a line into an event (exit 1 if it has errors)."""
    if as_topic is None:
        return None
    decode_line = raw_decoder(
        as_topic, sources or Settings().sources_path, records=records, err=err
    )
    if decode_line is None:
        raise typer.Exit(1)
    return decode_line


def _check_sources(
    events: Path | None,
    topic: str | None,
    since: str | None,
    until: str | None,
    *,
    records: bool,
    as_topic: str | None,
) -> None:
    """Reject option combinations `replay` cannot honour (typer.BadParameter)."""
    if (events is None) == (topic is None):
        raise typer.BadParameter("give an EVENTS file or --topic", param_hint="EVENTS")
    if events is not None and str(events) != "-" and not events.is_file():
        raise typer.BadParameter(f"{events} is not a file", param_hint="EVENTS")
    if topic is not None and since is None:
        raise typer.BadParameter("--topic needs --since (e.g. 7d)", param_hint="--since")
    if (since is not None or until is not None) and topic is None:
        raise typer.BadParameter("--since and --until go with --topic", param_hint="--since")
    if records and as_topic is None:
        raise typer.BadParameter("--records needs --as-topic", param_hint="--records")


def test_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(exists=True, help="*.test.yaml files or directories (default: rules)"),
    ] = None,
    sources: Annotated[
        Path | None,
        typer.Option(help="mapping tests to run too (default, with no PATHS: CXMON_SOURCES_PATH)"),
    ] = None,
) -> None:
    """Run rule and mapping tests (*.test.yaml): PASS/FAIL per test with a diff; exit 1 on any failure."""
    out = Console(highlight=False, soft_wrap=True)
    where = list(paths or [Path("rules")])
    # The configured mapping directory joins the default run, not a run of named paths.
    mapping_dir = sources if sources is not None else None if paths else Settings().sources_path
    if mapping_dir is not None and mapping_dir.exists() and mapping_dir not in where:
        where.append(mapping_dir)
    files = collect_test_files(where)
    mapping_tests = [f for f in files if is_mapping_test(f)]
    results: list[TestFileResult[Any]] = [run_test_file(f) for f in files if f not in mapping_tests]
    results += run_mapping_tests(mapping_tests)
    if not results:
        out.print("[red]no rule tests (*.test.yaml) found[/red]")
        raise typer.Exit(1)
    for result in results:
        _print_file(result, out)
    passed = sum(c.passed for r in results for c in r.cases)
    failed = sum(not c.passed for r in results for c in r.cases)
    broken = sum(bool(r.errors) for r in results)
    colour = "green" if not failed and not broken else "red"
    summary = f"{passed} passed, {failed} failed in {len(results)} file(s)"
    if broken:
        summary += f"; {broken} file(s) could not run"
    out.print(f"[{colour}]{summary}[/{colour}]")
    raise typer.Exit(0 if all(r.passed for r in results) else 1)


def _load(path: Path, err: Console) -> LoadResult | None:
    result = load_rules([path])
    print_issues(result.issues, err)
    return None if result.errors else result


def _read_lines(events: Path) -> list[bytes]:
    if str(events) == "-":
        return sys.stdin.buffer.readlines()
    with events.open("rb") as handle:
        return handle.readlines()


def _run(
    rules: LoadResult,
    lines: Iterable[bytes],
    lateness: timedelta,
    decode_line: Callable[[bytes], EventRef | None] | None = None,
) -> ReplayResult:
    return replay(lines, Ruleset(rules.rules, lateness), lateness, decode_line)


def _print_alerts(alerts: Sequence[Alert], output: str, out: Console) -> None:
    if output != "table":
        for alert in alerts:
            typer.echo(json.dumps(alert.model_dump(mode="json")))
        return
    table = _table()
    for alert in alerts:
        table.add_row(*_cells(alert))
    _print_table(table, out)


def _print_changes(changes: Sequence[tuple[str, Alert]], output: str, out: Console) -> None:
    if output != "table":
        for mark, alert in changes:
            change = "added" if mark == "+" else "removed"
            typer.echo(json.dumps({"change": change, **alert.model_dump(mode="json")}))
        return
    table = _table(change=True)
    for mark, alert in changes:
        style = "green" if mark == "+" else "red"
        table.add_row(f"[{style}]{mark}[/{style}]", *_cells(alert))
    _print_table(table, out)


def _print_table(table: Table, out: Console) -> None:
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:  # piped: whole lines, no cell padding at the end
        out.print(table)
    for line in captured.get().splitlines():
        typer.echo(line.rstrip())


def _table(*, change: bool = False) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    if change:
        table.add_column("", no_wrap=True)
    for name in ("time", "status", "severity", "rule", "key"):
        table.add_column(name, no_wrap=True)
    table.add_column("message", overflow="fold")
    return table


def _cells(alert: Alert) -> list[str]:
    style = STATUS_STYLE[alert.status]
    return [
        alert.event_time.strftime("%Y-%m-%d %H:%M"),
        f"[{style}]{alert.status}[/{style}]",
        alert.severity,
        escape(alert.rule_id),
        escape(alert.key),
        escape(alert.message),
    ]


def _print_summary(rules: LoadResult, result: ReplayResult, err: Console) -> None:
    skipped = f", {result.skipped} skipped by the mapping" if result.skipped else ""
    err.print(
        f"replay: {result.events} events, {len(result.rejected)} rejected{skipped}, "
        f"{len(result.alerts)} alert(s); {result.duplicates} duplicate(s) ignored, "
        f"{result.out_of_order} out of order"
    )
    if result.rejected:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(result.rejects_by_reason.items()))
        err.print(f"  rejected by reason: {reasons}")
    by_status = Counter((a.rule_id, a.status) for a in result.alerts)
    width = max((len(r.id) for r in rules.rules), default=0)
    for rule in rules.rules:
        line = (
            f"  {rule.id:<{width}}  {by_status[(rule.id, 'firing')]:>5} firing"
            f"  {by_status[(rule.id, 'resolved')]:>5} resolved"
        )
        if result.pending[rule.id]:
            due = result.next_due[rule.id]
            line += (
                f"  {result.pending[rule.id]} deadline(s) pending at the end of the input "
                f"(next {due:%Y-%m-%d %H:%M} UTC)"
            )
        if result.eval_errors[rule.id]:
            line += f"  [yellow]{result.eval_errors[rule.id]} evaluation error(s)[/yellow]"
        err.print(line)


def _print_rejected(result: ReplayResult, err: Console) -> None:
    if result.rejected:
        err.print(f"rejected records ({len(result.rejected)}):")
    for rejected in result.rejected:
        err.print(
            f"  [yellow]line {rejected.line_no}[/yellow]: {rejected.reason}: "
            f"{escape(rejected.detail)}"
        )


def _print_file(result: TestFileResult[Any], out: Console) -> None:
    print_issues(result.issues, out)
    for case in result.cases:
        where = escape(f"{result.file}:{case.location.line}")
        if case.passed:
            out.print(f"[green]PASS[/green] {where}  {escape(case.name)}")
            continue
        out.print(f"[red]FAIL[/red] {where}  {escape(case.name)}")
        for style, line in case.failure_lines():
            out.print(f"       [{style}]{escape(line)}[/{style}]")
