"""Source mappings in the CLI: `validate` of mapping files, mapping tests in `test`, and raw
records in `replay --as-topic`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from monitor.errors import ConfigIssue
from monitor.events import EventRef, Rejected, RejectReason
from monitor.events.mapping import RawRecord, evaluate
from monitor.rules import load_rules
from monitor.rules.loader import collect_files
from monitor.sources import SourceLoad, is_mapping_file, load_sources
from monitor.sources.loader import departments_named


def split_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """The rule files and the mapping files under the given files/directories."""
    files = collect_files(paths)
    mappings = [f for f in files if is_mapping_file(f)]
    return [f for f in files if f not in mappings], mappings


def load_for_validate(
    mapping_paths: Sequence[Path], rule_files: Sequence[Path], rules_path: Path
) -> SourceLoad:
    """Mapping files checked against the departments rules name: those of the rule files being
    validated with them, else those of the configured rule directory (if it loads)."""
    if rule_files:
        departments = departments_named(load_rules(rule_files).rules)
    elif rules_path.exists():
        departments = departments_named(load_rules([rules_path]).rules)
    else:
        departments = None
    return load_sources(mapping_paths, departments)


def raw_decoder(
    topic: str, sources_path: Path, *, records: bool, err: Console
) -> Callable[[bytes], EventRef | None] | None:
    """A line decoder for `replay --as-topic`: raw line -> the mapped event, None when `when`
    skips it, Rejected otherwise. None (after printing why) if the mapping cannot be used."""
    loaded = load_sources([sources_path])
    _print(loaded.issues, err)
    if loaded.errors:
        return None
    source = loaded.mappings.get(topic)
    if source is None:
        mapped = ", ".join(loaded.mappings.topics) or "none"
        err.print(
            f"[red]no mapping in {sources_path} reads topic {topic!r}[/red] (mapped: {mapped})"
        )
        return None
    offsets = iter(range(1 << 62))

    def decode_line(line: bytes) -> EventRef | None:
        raw = _record(topic, line, next(offsets)) if records else RawRecord(topic, line.strip())
        return evaluate(source, raw)

    return decode_line


def _record(topic: str, line: bytes, offset: int) -> RawRecord:
    """A `--records` line: {"key", "value", "headers", "timestamp"}."""
    try:
        item = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Rejected(RejectReason.BAD_JSON, f"the record line is not JSON: {exc}") from None
    if not isinstance(item, dict) or "value" not in item:
        raise Rejected(RejectReason.NOT_AN_OBJECT, 'a record line is {"value": ..., "key": ...}')
    value = item["value"]
    key = item.get("key")
    headers = item.get("headers") or {}
    if not isinstance(headers, dict):
        raise Rejected(RejectReason.BAD_FIELD, "headers must be an object of strings")
    return RawRecord(
        topic=topic,
        value=None if value is None else json.dumps(value).encode(),
        key=None if key is None else str(key).encode(),
        headers=tuple((str(k), str(v).encode()) for k, v in headers.items()),
        offset=offset,
        timestamp=_timestamp(item.get("timestamp")),
    )


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)  # Kafka's epoch milliseconds
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(RejectReason.BAD_TIME, f"timestamp {value!r} is not RFC 3339") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _print(issues: Sequence[ConfigIssue], err: Console) -> None:
    from cli.render import print_issues

    print_issues(issues, err)
