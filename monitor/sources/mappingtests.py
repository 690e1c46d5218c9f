"""Mapping tests (`*.test.yaml` with `source_files:`): raw records -> the event, skip or rejection
each must become (docs/sources.md, "Mapping tests").

Problems in a test file (YAML, unknown or missing fields, missing mapping files, a topic no
mapping reads) are `ConfigIssue`s with `file:line:col`, like the rule tests'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.config.locate import Locator
from monitor.config.testfiles import TestFileResult, TestFormat
from monitor.config.testfiles import run_test_file as run_tests_in
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.events import EventRef, Rejected
from monitor.events.mapping import MappingFailed, RawRecord, SourceMappings, evaluate
from monitor.sources.loader import SourceLoad, load_sources

_MAPPING_TEST = re.compile(r"(?m)^source_files\s*:")
EVENT_FIELDS = ("id", "source", "type", "time", "subject", "data")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecordSpec(_Spec):
    """A raw record: `value` (any JSON, encoded) or `raw` (text sent as it is), and the rest."""

    value: Any = None
    raw: str | None = None
    key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    partition: int = 0
    offset: int = 0
    timestamp: datetime | None = None

    def to_raw(self, topic: str) -> RawRecord:
        """The record as the worker would receive it from `topic`."""
        if self.raw is not None:
            body: bytes | None = self.raw.encode()
        elif "value" in self.model_fields_set:
            body = json.dumps(self.value).encode()
        else:
            body = None
        moment = self.timestamp
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return RawRecord(
            topic=topic,
            value=body,
            key=self.key.encode() if self.key is not None else None,
            headers=tuple((k, v.encode()) for k, v in self.headers.items()),
            partition=self.partition,
            offset=self.offset,
            timestamp=moment,
        )


class RejectSpec(_Spec):
    """What a rejection must say: the failing field, and a part of the error."""

    field: str | None = None
    error: str | None = None


class OutcomeSpec(_Spec):
    """The expected outcome: an event (the fields given are compared) or a rejection."""

    event: dict[str, Any] | None = None
    rejected: RejectSpec | None = None


class CaseSpec(_Spec):
    """One named test: a raw record in, an event, a skip or a rejection out."""

    name: str
    topic: str | None = None
    record: RecordSpec
    expect: Literal["skipped"] | OutcomeSpec


class MappingTestFileSpec(_Spec):
    """A whole mapping test file."""

    FILE_KIND: ClassVar[str] = "a mapping test file"
    FILE_SHAPE: ClassVar[str] = "`source_files:` and `tests:`"

    source_files: list[str] = Field(min_length=1)
    tests: list[CaseSpec] = Field(min_length=1)


@dataclass(frozen=True)
class MappingCaseResult:
    """One test's outcome: the differences between what was expected and what happened."""

    name: str
    location: SourceLocation
    problems: list[str] = field(default_factory=list)
    got: str = ""

    @property
    def passed(self) -> bool:
        """Whether the record became what the test expects."""
        return not self.problems

    def failure_lines(self) -> list[tuple[str, str]]:
        """Each difference, then what the record became."""
        return [("red", f"- {problem}") for problem in self.problems] + [
            ("dim", f"got: {self.got}")
        ]


def is_mapping_test(path: Path) -> bool:
    """Whether a `*.test.yaml` tests source mappings (it has `source_files:`)."""
    return bool(_MAPPING_TEST.search(path.read_text(encoding="utf-8", errors="replace")))


def run_mapping_test_file(path: Path) -> TestFileResult[MappingCaseResult]:
    """Load one mapping test file and its mappings, and run each test."""
    return run_tests_in(path, MAPPING_TESTS)


def _run_cases(
    spec: MappingTestFileSpec,
    sources: SourceLoad,
    locator: Locator,
    result: TestFileResult[MappingCaseResult],
) -> None:
    if result.errors:
        return
    for index, case in enumerate(spec.tests):
        where = locator.value(("tests", index))
        topic = case.topic or (sources.mappings.topics[0] if len(sources.mappings) == 1 else None)
        if topic is None or sources.mappings.get(topic) is None:
            result.issues.append(
                ConfigIssue(
                    IssueCode.UNKNOWN_NAME,
                    f"test {case.name!r}: no mapping reads topic {topic!r}"
                    if topic
                    else f"test {case.name!r} needs `topic:` (the files map several)",
                    where,
                    hint=f"mapped topics: {', '.join(sources.mappings.topics)}",
                )
            )
            continue
        result.cases.append(run_case(sources.mappings, topic, case, where))


MAPPING_TESTS = TestFormat(
    MappingTestFileSpec,
    "source_files",
    "mapping file",
    IssueCode.MISSING_FIELD,
    load_sources,
    _run_cases,
)


def run_case(
    mappings: SourceMappings, topic: str, case: CaseSpec, where: SourceLocation
) -> MappingCaseResult:
    """Map the test's record and compare the outcome with the expectation."""
    source = mappings.get(topic)
    assert source is not None  # noqa: S101 - the caller checked the topic
    try:
        event = evaluate(source, case.record.to_raw(topic))
    except Rejected as rejected:
        return _compare_rejection(case, where, rejected)
    got = "skipped" if event is None else describe(event)
    if case.expect == "skipped":
        problems = [] if event is None else [f"expected the record to be skipped, got {got}"]
        return MappingCaseResult(case.name, where, problems, got)
    if event is None or case.expect.event is None:
        wanted = "a rejection" if case.expect.rejected else "an event"
        return MappingCaseResult(case.name, where, [f"expected {wanted}, got {got}"], got)
    return MappingCaseResult(case.name, where, _event_problems(case.expect.event, event), got)


def _compare_rejection(
    case: CaseSpec, where: SourceLocation, rejected: Rejected
) -> MappingCaseResult:
    failed = rejected.field if isinstance(rejected, MappingFailed) else None
    got = f"rejected ({rejected.reason}, field {failed}): {rejected.detail}"
    expect = case.expect
    if expect == "skipped" or expect.rejected is None:
        wanted = "skipped" if expect == "skipped" else "an event"
        return MappingCaseResult(case.name, where, [f"expected {wanted}, got {got}"], got)
    problems = []
    if expect.rejected.field is not None and expect.rejected.field != failed:
        problems.append(f"expected the field {expect.rejected.field!r} to fail, got {failed!r}")
    if expect.rejected.error is not None and expect.rejected.error not in rejected.detail:
        problems.append(f"expected the error to contain {expect.rejected.error!r}")
    return MappingCaseResult(case.name, where, problems, got)


def _event_problems(expected: dict[str, Any], event: EventRef) -> list[str]:
    problems = []
    for name, wanted in expected.items():
        if name in ("specversion", "datacontenttype"):
            continue
        if name not in EVENT_FIELDS:
            problems.append(f"an event has no field {name!r} (it has {', '.join(EVENT_FIELDS)})")
            continue
        actual = getattr(event, name)
        if name == "time":
            try:
                wanted = _instant(wanted)
            except ValueError:
                problems.append(f"expected time {wanted!r} is not RFC 3339 with an offset")
                continue
        if actual != wanted:
            problems.append(f"{name}: expected {wanted!r}, got {actual!r}")
    return problems


def _instant(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("no offset")
    return moment.astimezone(UTC)


def describe(event: EventRef) -> str:
    """An event in one line, as a failed test shows it."""
    body = {
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "subject": event.subject,
        "data": event.data,
    }
    return json.dumps(body, default=str)


def run_mapping_tests(files: Iterable[Path]) -> list[TestFileResult[MappingCaseResult]]:
    """Run the given mapping test files."""
    return [run_mapping_test_file(p) for p in files]
