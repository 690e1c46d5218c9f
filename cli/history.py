"""A topic's retained history as replay input: `cxmon export`, and the `--topic` of `cxmon replay`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from monitor.config.fields import parse_offset
from monitor.events import Rejected
from monitor.events.codec import decode, encode
from monitor.settings import Settings

T = TypeVar("T")


def register(app: typer.Typer) -> None:
    """Add `export` to the root command."""
    app.command("export")(export_command)


def parse_moment(text: str, param: str, now: datetime | None = None) -> datetime:
    """`7d` (that long before now) or an RFC 3339 time like 2026-05-01T00:00:00Z."""
    now = now or datetime.now(UTC)
    try:
        return now - parse_offset(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected a duration back from now (7d, 12h) or a time like 2026-05-01T00:00:00Z, "
            f"got {text!r}",
            param_hint=param,
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs a UTC offset (Z or +02:00)", param_hint=param)
    return moment.astimezone(UTC)


def cloudevent_line(value: bytes | None, headers: list[tuple[str, bytes]]) -> bytes:
    """A record as one JSON line: structured CloudEvents as they are, binary mode (ce_* headers)
    turned into structured; a record that does not decode is kept as it is (replay rejects it
    with its reason)."""
    body = value or b""
    if any(name.lower().startswith("ce_") for name, _ in headers):
        try:
            return encode(decode(body, headers))
        except Rejected:
            return body
    return body.replace(b"\n", b" ")


@contextmanager
def topic_lines(
    topic: str, since: datetime, until: datetime | None, *, records: bool, err: Console
) -> Iterator[Iterator[bytes]]:
    """The topic's records in the range as replay lines (raw records as JSON with `records`),
    with a progress bar by record time on a terminal; exits 1 if the topic cannot be read."""
    from streams.history import HistoryError, TopicHistory  # lazy: only these need Kafka

    settings = Settings()
    history = TopicHistory.for_settings(settings, topic, since, until)
    try:
        history.open()
    except HistoryError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    try:
        end = until or datetime.now(UTC)
        span = max((end - since).total_seconds(), 1.0)
        items = progress(
            history.records(),
            err,
            f"{topic} from {since:%Y-%m-%d %H:%M}",
            span,
            lambda r: (r.timestamp - since).total_seconds(),
        )
        if records:
            yield (json.dumps(r.as_json()).encode() for r in items)
        else:
            yield (cloudevent_line(r.value, r.headers) for r in items)
    finally:
        history.close()


def progress(
    items: Iterable[T],
    console: Console,
    what: str,
    total: float,
    done: Callable[[T], float] | None = None,
) -> Iterator[T]:
    """The items, with a progress bar on `console` when it is a terminal (`done(item)`: how far
    along the item is, in units of `total`; by default one per item)."""
    if not console.is_terminal:
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[n]:,} records"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(what, total=total, n=0)
        for count, item in enumerate(items, start=1):
            yield item
            if count % 200 == 0:
                at = done(item) if done is not None else count
                bar.update(task, completed=min(at, total), n=count)


def export_command(
    topic: Annotated[str, typer.Option(help="the topic to read, e.g. cx.events")],
    since: Annotated[str, typer.Option(help="start: 7d back from now, or 2026-05-01T00:00:00Z")],
    until: Annotated[str | None, typer.Option(help="end (default: now), same forms")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="JSON Lines file (default: stdout)")
    ] = None,
    records: Annotated[
        bool,
        typer.Option(help='raw records {"key", "value", "headers", "timestamp"} (for --as-topic)'),
    ] = False,
) -> None:
    """Write a topic's retained records in a time range to JSON Lines (no consumer group, nothing committed)."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    start = parse_moment(since, "--since")
    end = parse_moment(until, "--until") if until is not None else None
    if end is not None and end <= start:
        raise typer.BadParameter("--until must be after --since", param_hint="--until")
    target = output.open("wb") if output is not None else sys.stdout.buffer
    written = 0
    try:
        with topic_lines(topic, start, end, records=records, err=err) as lines:
            for line in lines:
                target.write(line + b"\n")
                written += 1
    finally:
        if output is not None:
            target.close()
        else:
            target.flush()
    where = f" to {output}" if output is not None else ""
    err.print(f"export: {written} records of {topic}{where}")
