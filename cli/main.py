"""The `cxmon` command: run a worker, check and test rules, send events."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from cli import author, history
from cli import notify as notify_cli
from cli.render import print_issues
from cli.sources import load_for_validate, split_paths
from monitor.config.durations import parse_duration
from monitor.errors import RuleError
from monitor.events.envelope import utcnow
from monitor.rules import LoadResult, load_rules
from monitor.rules.validate import untested_stable_rules
from monitor.settings import Settings
from monitor.sources import load_sources
from monitor.sources.loader import departments_named

app = typer.Typer(
    name="cxmon",
    help="Experience-conflict monitor: catch departments contradicting each other in front of a customer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
author.register(app)
history.register(app)
notify_cli.register(app)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


@app.command()
def run(
    rules: Annotated[
        Path | None, typer.Option(help="rule directory (default: CXMON_RULES_PATH)")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="worker processes in one group (default: CXMON_PROCESSES; 0: one per core, "
            "at most the partitions); process i serves metrics on CXMON_METRICS_PORT + i",
        ),
    ] = None,
) -> None:
    """Run workers against the configured Kafka (more workers with the same app id share the work)."""
    import logging

    from streams.supervisor import process_count, supervise
    from streams.worker import run_worker  # lazy: only `run` needs Faust

    overrides: dict[str, Any] = {"rules_path": rules} if rules else {}
    if processes is not None:
        overrides["processes"] = processes
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    count = process_count(settings.processes, settings.topic_partitions)
    if count > 1:
        loaded = load_rules([settings.rules_path], settings.rule_limits())
        sources = load_sources([settings.sources_path], departments_named(loaded.rules))
        errors = loaded.errors + sources.errors
        if errors:  # refuse once here rather than once per worker
            print_issues(errors, err)
            err.print("[red]refusing to start: fix the rule or mapping files above[/red]")
            raise typer.Exit(1)
        raise typer.Exit(supervise(settings, count))
    try:
        run_worker(settings)
    except RuleError as exc:
        print_issues(exc.issues, err)
        err.print("[red]refusing to start: fix the rule or mapping files above[/red]")
        raise typer.Exit(1) from None


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None, typer.Argument(exists=True, help="rule files or directories")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    explain: Annotated[
        str | None, typer.Option(help="print what an issue code means, e.g. CEL_SCOPE")
    ] = None,
) -> None:
    """Load, validate and compile rules, source mappings (or an alerting file); print every problem as file:line:col; exit 1 on any error."""
    if explain is not None:
        raise typer.Exit(explain_code(explain))
    if not paths:
        raise typer.BadParameter("give rule files or directories", param_hint="PATHS")
    paths, alerting_failed = notify_cli.validate_alerting(paths, output)
    if not paths:
        raise typer.Exit(1 if alerting_failed else 0)
    settings = Settings()
    rule_files, mapping_files = split_paths(paths)
    result = LoadResult([])
    if rule_files or not mapping_files:
        result = load_rules(rule_files or paths, settings.rule_limits())
        # Only here, not in the worker: a deployment ships rule files without their tests.
        untested = untested_stable_rules(result.rules, paths)
        if untested:
            result = LoadResult(result.rules, result.issues + untested, result.files)
    sources = load_for_validate(mapping_files, rule_files, settings.rules_path)
    issues = sorted(result.issues + sources.issues, key=lambda i: i.location)
    if output == "json":
        for issue in issues:
            typer.echo(issue.to_json())
    else:
        print_issues(issues, out)
        if not result.errors and not sources.errors:
            found = (
                [f"{len(result.rules)} rules in {len(result.files)} files"] if result.files else []
            )
            if mapping_files:
                found.append(
                    f"{len(sources.mappings)} source mappings in {len(sources.files)} files"
                )
            err.print(f"[green]ok[/green]: {', '.join(found)}")
    raise typer.Exit(1 if result.errors or sources.errors or alerting_failed else 0)


def explain_code(text: str) -> int:
    """Print an issue code's meaning (0), or the known codes with the closest first (2)."""
    import difflib

    from monitor.errors import IssueCode
    from monitor.issue_docs import ISSUE_DOCS, WARNINGS

    name = text.strip().upper()
    if name not in IssueCode.__members__:
        close = difflib.get_close_matches(name, list(IssueCode.__members__), n=1)
        guess = f" did you mean {close[0]}?" if close else ""
        err.print(f"[red]no issue code {text!r}.{guess}[/red]")
        err.print("codes: " + ", ".join(IssueCode.__members__))
        return 2
    code = IssueCode(name)
    kind = "warning" if code in WARNINGS else "error"
    out.print(f"{code} ({kind}): {ISSUE_DOCS[code]}", markup=False)
    out.print("More in docs/rules.md (Errors) and docs/alerting.md.", markup=False)
    return 0


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="live journeys per second after the backfill")] = 5.0,
    backfill: Annotated[
        str, typer.Option(help="history to publish first, e.g. 4d (0 for none)")
    ] = "4d",
    journeys: Annotated[int, typer.Option(help="journeys in the backfill")] = 300,
    conflict_share: Annotated[float, typer.Option(help="share of journeys that go wrong")] = 0.1,
    customers: Annotated[int, typer.Option(help="distinct customers")] = 500,
    duration: Annotated[
        float, typer.Option(help="seconds of live traffic (0: until Ctrl-C)")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
    binary: Annotated[bool, typer.Option(help="CloudEvents binary mode (ce_* headers)")] = False,
    raw: Annotated[
        str | None,
        typer.Option(
            help="publish this department in its system's own form, read through a shipped "
            "mapping: billing (payment webhooks, sources/payments.yaml) or fulfilment "
            "(Debezium CDC, sources/orders-cdc.yaml)"
        ),
    ] = None,
) -> None:
    """Publish realistic departmental traffic with injected conflicts to the events topic."""
    from monitor.simulator import RAW_FORMS, LiveSchedule, Simulator
    from streams.producer import EventPublisher

    if raw is not None and raw not in RAW_FORMS:
        raise typer.BadParameter(f"one of {', '.join(RAW_FORMS)}", param_hint="--raw")
    settings = Settings()
    sim = Simulator(seed=seed, customers=customers, conflict_share=conflict_share)
    now = utcnow()
    as_raw = RAW_FORMS[raw] if raw is not None else None
    with EventPublisher.for_settings(settings, binary=binary, raw=as_raw) as out:
        if backfill not in ("0", ""):
            history = sim.backfill(now - parse_duration(backfill), now, journeys)
            sent = out.send_all(history)
            err.print(f"simulate: published {sent} events of history ({backfill})")
        if rate <= 0:
            return
        schedule = LiveSchedule(sim, scale=1 / 3600)  # one simulated hour per second
        stop_at = time.monotonic() + duration if duration > 0 else float("inf")
        next_start = time.monotonic()
        live = 0
        try:
            while time.monotonic() < stop_at:
                if time.monotonic() >= next_start:
                    schedule.start_journey(utcnow())
                    next_start += 1 / rate
                for event in schedule.due(utcnow()):
                    out.send(event)
                    live += 1
                out.flush()
                time.sleep(min(0.05, max(0.0, next_start - time.monotonic())))
        except KeyboardInterrupt:
            pass
        err.print(f"simulate: published {live} live events")


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="JSON Lines of CloudEvents ('-' for stdin)")],
    binary: Annotated[bool, typer.Option(help="CloudEvents binary mode (ce_* headers)")] = False,
) -> None:
    """Send events from a JSON Lines file to the events topic (invalid lines are sent as they are)."""
    from monitor.events.codec import decode
    from monitor.events.rejects import Rejected
    from streams.producer import EventPublisher

    settings = Settings()
    lines = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    sent = 0
    with EventPublisher.for_settings(settings, binary=binary) as out:
        for line in lines:
            if not line.strip():
                continue
            try:
                out.send(decode(line.encode()))
            except Rejected:
                out.send_raw(line.encode())
            sent += 1
    err.print(f"publish: sent {sent} records to {settings.topic_events}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of rule files (editors use it for completion: rules/schema.json)."""
    from monitor.rules.schema import RuleFileSpec

    typer.echo(json.dumps(RuleFileSpec.model_json_schema(), indent=2))


@app.command()
def demo(
    rules: Annotated[Path, typer.Option(help="rule directory")] = Path("rules"),
    metrics_port: Annotated[int, typer.Option(help="worker metrics port")] = 9464,
    rate: Annotated[float, typer.Option(help="live journeys per second")] = 2.0,
    sources: Annotated[
        Path, typer.Option(help="source mapping directory (billing comes as raw webhooks)")
    ] = Path("sources"),
    alerting: Annotated[
        Path | None,
        typer.Option(
            exists=True, help="the notifier's alerting file (default: CXMON_ALERTING_PATH)"
        ),
    ] = None,
    simulate: Annotated[
        bool, typer.Option(help="publish simulated traffic (--no-simulate: only your own events)")
    ] = True,
) -> None:
    """Embedded broker + worker + notifier (+ simulator) on this machine; alerts print live; Ctrl-C stops all."""
    from streams.demo import run_demo

    raise typer.Exit(run_demo(rules, metrics_port, rate, sources, alerting, simulate))


def main() -> None:
    """Console-script entry point."""
    from pydantic import ValidationError

    from monitor.settings_file import SettingsFileError, explain, load_settings_file

    try:
        app()
    except SettingsFileError as exc:
        err.print(f"[red]settings:[/red] {exc}", markup=True, highlight=False)
        sys.exit(2)
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        config = os.environ.get("CXMON_CONFIG")
        for line in explain(exc, load_settings_file(Path(config)) if config else None):
            err.print(line, markup=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
