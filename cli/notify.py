"""Alert delivery commands: `notify` (the notifier process, or `--test RECEIVER`), `routes test`,
`silence add/list/expire` and `render` (preview an alert as a channel shows it)."""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from cli.render import print_issues
from monitor.alerts.channels.webhook import payload
from monitor.alerts.dispatch.route import match_routes
from monitor.alerts.labels import parse_labels
from monitor.alerts.loader import AlertingConfig, load_alerting
from monitor.alerts.model import Alert, EvidenceItem
from monitor.alerts.receivers import ChannelFactory, build_receivers
from monitor.alerts.render import FLAVOURS, SLACK_LIMITS, Limits, render, slack_blocks, teams_card
from monitor.alerts.secrets import Redactor, install_log_redaction
from monitor.alerts.silences import new_silence
from monitor.alerts.stages.deliver import DeliverStage, RetryPolicy
from monitor.config.durations import parse_duration
from monitor.events.envelope import utcnow
from monitor.metrics import NotifierMetrics
from monitor.settings import Settings

CHANNELS = ("slack", "teams", "email", "webhook", "console")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
routes_app = typer.Typer(help="Check the routing tree without a server.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences: mute matching alerts for a while.", no_args_is_help=True)
AlertingOption = Annotated[
    Path | None, typer.Option("--alerting", help="alerting file (default: CXMON_ALERTING_PATH)")
]


def register(app: typer.Typer) -> None:
    """Add `notify`, `routes`, `silence` and `render` to the root command."""
    app.command("notify")(notify_command)
    app.command("render")(render_command)
    app.add_typer(routes_app, name="routes")
    app.add_typer(silence_app, name="silence")


def load_config(path: Path, redactor: Redactor) -> AlertingConfig:
    """Load the alerting file or print its issues and exit 1."""
    if not path.is_file():
        err.print(f"[red]no alerting file at {escape(str(path))}[/red] (set CXMON_ALERTING_PATH)")
        raise typer.Exit(1)
    loaded = load_alerting(path, os.environ, redactor)
    if loaded.errors:
        print_issues(loaded.errors, err)
    elif loaded.issues:
        err.print(
            f"[dim]{len(loaded.issues)} warning(s); see `cxmon validate {escape(str(path))}`[/dim]"
        )
    if loaded.config is None:
        raise typer.Exit(1)
    return loaded.config


def notify_command(
    alerting: AlertingOption = None,
    test: Annotated[
        str | None, typer.Option("--test", help="send a test notification to RECEIVER and exit")
    ] = None,
) -> None:
    """Run the notifier: read alerts, route, group, silence and deliver them to team channels."""
    settings = Settings(alerting_path=alerting) if alerting else Settings()
    redactor = Redactor()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction(redactor)
    config = load_config(settings.alerting_path, redactor)
    if test is not None:
        raise typer.Exit(asyncio.run(_send_test(config, test, redactor)))
    from streams.notifier import run_notifier  # lazy: only the process needs Faust

    run_notifier(settings, config, redactor, os.environ)


async def _send_test(config: AlertingConfig, name: str, redactor: Redactor) -> int:
    if name not in config.receiver_names():
        err.print(
            f"[red]no receiver {escape(name)!r}[/red]; defined: {', '.join(config.receiver_names())}"
        )
        return 1
    factory = ChannelFactory(os.environ, redactor, lambda text: out.print(text, markup=False))
    receiver = build_receivers(config, factory)[name]
    for reason in receiver.disabled:
        err.print(f"[yellow]channel off:[/yellow] {escape(reason)}")
    failures: list[str] = []

    class Report:
        async def dead_letter(
            self, alert: Alert, *, receiver: str, channel: str, reason: str, attempts: int
        ) -> None:
            failures.append(f"{channel}: {reason}")

    from prometheus_client import CollectorRegistry

    from monitor.alerts.dispatch.route import compile_route
    from monitor.alerts.pipeline import StageContext

    policy = RetryPolicy(timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=5))
    stage = DeliverStage(policy, Report(), NotifierMetrics(CollectorRegistry()))
    route = compile_route(config.spec.route)
    ctx = StageContext(receiver, route, "test", utcnow())
    await stage.run(ctx, [sample_alert(test=True)])
    for failure in failures:
        err.print(f"[red]failed[/red] {escape(redactor.redact(failure))}")
    sent = len(receiver.channels) - len(failures)
    err.print(
        f"test notification: {sent} of {len(receiver.channels)} channel(s) of {name} accepted it"
    )
    return 1 if failures or not receiver.channels else 0


@routes_app.command("test")
def routes_test(
    labels: Annotated[
        list[str], typer.Option("--labels", help="k=v (repeat, or several after one --labels)")
    ],
    alerting: AlertingOption = None,
) -> None:
    """Print which receivers an alert with these labels reaches (owners=a,b for the pair)."""
    settings = Settings(alerting_path=alerting) if alerting else Settings()
    redactor = Redactor()
    config = load_config(settings.alerting_path, redactor)
    try:
        label_set = parse_labels([p for item in labels for p in item.split()])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--labels") from None
    routes = match_routes(config.root, label_set)
    if not routes:
        err.print("no route matches (the root route has matchers these labels fail)")
        raise typer.Exit(1)
    for route in routes:
        out.print(
            f"{route.receiver}  [dim](route {route.path}, group {escape(route.group_key(label_set))}, "
            f"group_wait {route.group_wait}, continue {str(route.continue_).lower()})[/dim]"
        )


@silence_app.command("add")
def silence_add(
    match: Annotated[
        list[str], typer.Option("--match", help="label=value, !=, =~regex, !~regex (repeatable)")
    ],
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 2h")] = "2h",
    comment: Annotated[str, typer.Option(help="why")] = "",
    by: Annotated[str | None, typer.Option(help="who (default: your user name)")] = None,
) -> None:
    """Silence matching alerts from now on; prints the silence id."""
    try:
        silence = new_silence(
            match,
            parse_duration(duration),
            utcnow(),
            created_by=by or getpass.getuser(),
            comment=comment,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    from streams.silences import write_silence

    write_silence(Settings(), silence)
    out.print(silence.id)
    err.print(f"silenced {', '.join(match)} until {silence.ends_at:%Y-%m-%d %H:%M UTC}")


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="include expired silences")] = False,
) -> None:
    """List silences in force (with --expired: all)."""
    from streams.silences import read_silences

    now = utcnow()
    book = read_silences(Settings())
    shown = [s for s in book.silences.values() if expired or s.ends_at > now]
    for s in sorted(shown, key=lambda s: s.ends_at):
        state = "active" if s.active(now) else "expired" if s.ends_at <= now else "pending"
        out.print(
            f"{s.id}  {state:<8} until {s.ends_at:%Y-%m-%d %H:%M UTC}  {escape(' '.join(s.matchers))}  by {escape(s.created_by)}: {escape(s.comment)}"
        )
    err.print(f"{len(shown)} silence(s)")


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="the id `silence add` printed")],
) -> None:
    """End a silence now."""
    from streams.silences import read_silences, write_silence

    settings = Settings()
    found = read_silences(settings).silences.get(silence_id)
    if found is None:
        err.print(f"[red]no silence {escape(silence_id)}[/red]")
        raise typer.Exit(1)
    write_silence(settings, found.expired(utcnow()))
    err.print(f"expired {silence_id}")


def render_command(
    alert_file: Annotated[
        Path,
        typer.Argument(exists=True, help="an alert as JSON (as on cx.alerts); a list for a group"),
    ],
    channel: Annotated[
        str, typer.Option(help="slack, teams, email, webhook or console")
    ] = "console",
) -> None:
    """Preview an alert (or a group) as a channel will show it."""
    if channel not in CHANNELS:
        raise typer.BadParameter(f"expected one of {', '.join(CHANNELS)}", param_hint="--channel")
    try:
        raw = json.loads(alert_file.read_text(encoding="utf-8"))
        alerts = [Alert.model_validate(a) for a in (raw if isinstance(raw, list) else [raw])]
    except ValueError as exc:
        err.print(f"[red]{escape(str(alert_file))}: not an alert[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    if channel == "webhook":
        typer.echo(
            json.dumps(
                json.loads(payload(alerts, receiver="preview", group_key="preview", repeat=False)),
                indent=2,
            )
        )
    elif channel == "slack":
        for message in render(alerts, "markdown", SLACK_LIMITS):
            typer.echo(json.dumps(slack_blocks(message), indent=2, ensure_ascii=False))
    elif channel == "teams":
        for message in render(alerts, "markdown", Limits(body=1000)):
            typer.echo(json.dumps(teams_card(message), indent=2, ensure_ascii=False))
    else:
        flavour = "html" if channel == "email" else "text"
        assert flavour in FLAVOURS  # noqa: S101 - narrows the literal for mypy
        for message in render(alerts, flavour):
            typer.echo(f"Subject: {message.title}\n\n{message.body}\n")


def sample_alert(*, test: bool = False) -> Alert:
    """A realistic alert for previews and `notify --test`."""
    at = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    return Alert(
        fingerprint="test0000000000000000" if test else "5f1c0a9d2e7b44c1a0b3",
        status="firing",
        rule_id="billing-charges-waived-fee",
        kind="contradiction",
        title=("[TEST] " if test else "") + "Billing charged a fee that support promised to waive",
        severity="high",
        owners=["support", "billing"],
        from_department="support",
        to_department="billing",
        key="cust-00262",
        message="cust-00262 was charged 25 for late_fee 3 days after support promised to waive it",
        labels={"team": "billing"},
        runbook="https://wiki.example.com/cx/waivers",
        event_time=at,
        detected_at=at + timedelta(seconds=2),
        evidence=[
            EvidenceItem(
                time=at - timedelta(days=3),
                department="support",
                source="support",
                type="fee.waiver_promised",
                id="w-1",
                slot="first",
            ),
            EvidenceItem(
                time=at,
                department="billing",
                source="billing",
                type="invoice.charged",
                id="inv-88123",
                slot="then",
            ),
        ],
    )


def validate_alerting(paths: list[Path], output: str) -> tuple[list[Path], bool]:
    """Check the alerting files among `paths` (recognised by `receivers:`/`route:`); return the
    other paths (rules) and whether an alerting file had errors."""
    from monitor.alerts.loader import looks_like_alerting

    rest: list[Path] = []
    failed = False
    for path in paths:
        if not looks_like_alerting(path):
            rest.append(path)
            continue
        redactor = Redactor()
        loaded = load_alerting(path, os.environ, redactor)
        if output == "json":
            for issue in loaded.issues:
                typer.echo(redactor.redact(issue.to_json()))
        else:
            print_issues(loaded.issues, out)
        if loaded.config is None:
            failed = True
        elif output != "json":
            config = loaded.config
            err.print(
                f"[green]ok[/green]: {path}: {len(config.receiver_names())} receivers, routes check out"
            )
    return rest, failed
