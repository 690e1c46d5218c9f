"""Rule tests (`*.test.yaml`, like `promtool test rules`): events at relative times -> expected alerts.

The format::

    rule_files: [billing.yaml]          # files or directories, relative to the test file
    start: 2026-05-01T09:00:00Z         # optional; t=0 (default 2026-01-05T09:00:00Z, a Monday)
    tests:
      - name: charge after a waiver alerts
        events:                         # `at` is a duration from start; `0s` (or 0) allowed
          - {at: 0s, source: support, type: fee.waiver_promised, subject: c1,
             data: {fee_code: late_fee}}
          - {at: 3d, source: billing, type: invoice.charged, subject: c1,
             data: {fee_code: late_fee, amount: 25}}
        evaluate_until: 10d             # optional, see below
        expect:                         # [] means: no alert at all
          - {rule: billing-charges-waived-fee, key: c1, status: firing, at: 3d}

Evaluation, per test, on a fresh driver (a dict store) and a fake clock:
- Events are processed in the order listed (list one out of order to test late arrival) with
  `id` defaulting to `e1`, `e2`, ... Before an event the clock moves to just before its time, so
  deadlines earlier than the event fire first and a follow-up exactly at a deadline is in time
  (windows are inclusive). The clock never moves backwards.
- Then the clock moves to `evaluate_until`; by default that is the last event plus the longest
  `within` of the rules under test (for business time, its horizon), so every deadline the events
  opened has passed.
- Each alert is compared by rule, key, status and `at` (its event time minus `start`; for a
  stalled rule that is the deadline). `status` defaults to `firing`; an expectation without `at`
  matches any time. An expectation may also state what a channel will show, each checked only
  when given: `message` (the rendered text, exactly), `severity`, `labels` (all of them, exactly)
  and `evidence` (the timeline, in order: each item's `source` (department or exact source),
  `type` and `at`, as given). The result lists the expected alerts that are missing, the
  unexpected ones, and those that came but differ in what they show.

Problems in a test file (YAML, unknown or missing fields, unknown rule ids, missing rule files)
are `ConfigIssue`s with `file:line:col`, like the rule loader's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from monitor.alerts import Alert, alert_from
from monitor.config.durations import format_duration
from monitor.config.fields import DurationOrZero
from monitor.config.fields import parse_offset as parse_offset
from monitor.config.locate import Locator
from monitor.config.testfiles import TestFileResult, TestFormat
from monitor.config.testfiles import run_test_file as run_tests_in
from monitor.engine.clock import FakeClock
from monitor.engine.driver import DictStore, Driver
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding
from monitor.errors import ConfigIssue, IssueCode, SourceLocation
from monitor.events import Event
from monitor.rules import LoadResult, load_rules
from monitor.rules.loader import TEST_SUFFIXES

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def format_offset(delta: timedelta) -> str:
    """An offset the way a test author writes it: `0s`, `3d`, `1h30m`."""
    return format_duration(delta)


def _aware(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PydanticCustomError("start", "start must carry a UTC offset, e.g. ...T09:00:00Z")
        return datetime.fromtimestamp(value.timestamp(), UTC)
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSpec(_Spec):
    """One event of a test, `at` a duration after `start`."""

    at: DurationOrZero
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    id: str | None = Field(default=None, min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)


class EvidenceSpec(_Spec):
    """One step of an expected alert's timeline; only the fields given are compared."""

    source: str | None = None
    type: str | None = None
    at: DurationOrZero | None = None


class ExpectSpec(_Spec):
    """One alert a test expects; `message`, `severity`, `labels`, `evidence` when given."""

    rule: str
    key: str
    status: Literal["firing", "resolved"] = "firing"
    at: DurationOrZero | None = None
    message: str | None = None
    severity: Literal["info", "low", "medium", "high", "critical"] | None = None
    labels: dict[str, str] | None = None
    evidence: list[EvidenceSpec] | None = None


class CaseSpec(_Spec):
    """One named test: events in, alerts expected out."""

    name: str
    events: list[EventSpec] = Field(default_factory=list)
    expect: list[ExpectSpec]
    evaluate_until: DurationOrZero | None = None


class RuleTestFileSpec(_Spec):
    """A whole `*.test.yaml` file."""

    FILE_KIND: ClassVar[str] = "a rule test file"
    FILE_SHAPE: ClassVar[str] = "`rule_files:` and `tests:`"

    rule_files: list[str] = Field(min_length=1)
    start: Annotated[datetime, BeforeValidator(_aware)] = DEFAULT_START
    tests: list[CaseSpec] = Field(min_length=1)


Step = tuple[str, str, str, timedelta]  # department, source, type, time from start


@dataclass(frozen=True)
class AlertLine:
    """An alert as a rule test states it: rule, key, status and time from `start` (None: any),
    and what a channel shows (None: not checked; an actual alert has all of it)."""

    rule: str
    key: str
    status: str
    at: timedelta | None
    message: str | None = field(default=None, compare=False)
    severity: str | None = field(default=None, compare=False)
    labels: tuple[tuple[str, str], ...] | None = field(default=None, compare=False)
    evidence: tuple[Step, ...] | None = field(default=None, compare=False)
    wanted_evidence: tuple[EvidenceSpec, ...] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        at = "any time" if self.at is None else f"at {format_offset(self.at)}"
        return f"{self.status} {self.rule} key={self.key} {at}"

    def matches(self, actual: AlertLine) -> bool:
        """Whether an actual alert is the one expected (rule, key, status, time)."""
        return (self.rule, self.key, self.status) == (actual.rule, actual.key, actual.status) and (
            self.at is None or self.at == actual.at
        )

    def differences(self, actual: AlertLine) -> list[str]:
        """What the actual alert shows differently from what is expected (empty: the same)."""
        found = []
        for name in ("message", "severity", "labels"):
            wanted, got = getattr(self, name), getattr(actual, name)
            if wanted is not None and wanted != got:
                shown = (dict(wanted), dict(got)) if name == "labels" else (wanted, got)
                found.append(f"{name}: expected {shown[0]!r}, got {shown[1]!r}")
        if self.wanted_evidence is not None and not _same_steps(
            self.wanted_evidence, actual.evidence or ()
        ):
            got = ", ".join(
                f"{d} {t} at {format_offset(a)}" for d, _, t, a in actual.evidence or ()
            )
            found.append(f"evidence: expected {_show_steps(self.wanted_evidence)}, got {got}")
        return found


def _same_steps(wanted: tuple[EvidenceSpec, ...], got: tuple[Step, ...]) -> bool:
    return len(wanted) == len(got) and all(
        (w.source is None or w.source in (department, source))
        and (w.type is None or w.type == kind)
        and (w.at is None or w.at == at)
        for w, (department, source, kind, at) in zip(wanted, got, strict=True)
    )


def _show_steps(steps: tuple[EvidenceSpec, ...]) -> str:
    parts = []
    for step in steps:
        at = f"at {format_offset(step.at)}" if step.at is not None else ""
        parts.append(" ".join(x for x in (step.source or "*", step.type or "*", at) if x))
    return ", ".join(parts)


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one test: what was expected, what happened, and the difference."""

    name: str
    location: SourceLocation
    expected: list[AlertLine]
    actual: list[AlertLine]
    missing: list[AlertLine]
    unexpected: list[AlertLine]
    # an expected alert that came, but shows something else: (expected, actual, differences)
    different: list[tuple[AlertLine, AlertLine, list[str]]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every expected alert happened as expected and nothing else did."""
        return not self.missing and not self.unexpected and not self.different

    def diff(self) -> list[str]:
        """A readable difference: `- missing` expected alerts, `+ unexpected` actual ones,
        `~ differs` for an alert that came with another message, severity, labels or evidence."""
        lines = [f"- missing:    {a}" for a in self.missing]
        lines += [f"+ unexpected: {a}" for a in self.unexpected]
        for _, actual, differences in self.different:
            lines += [f"~ differs:    {actual}: {d}" for d in differences]
        return lines

    def failure_lines(self) -> list[tuple[str, str]]:
        """The diff (missing in red, the rest in yellow), then every alert that came, if any
        of them was expected."""
        lines = [("red" if line.startswith("-") else "yellow", line) for line in self.diff()]
        if len(self.actual) > len(self.unexpected):
            lines.append(("dim", "got: " + ", ".join(str(a) for a in self.actual)))
        return lines


def collect_test_files(paths: Iterable[Path]) -> list[Path]:
    """Rule test files under the given files/directories, sorted."""
    found: list[Path] = []
    for path in paths:
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found.extend(p for p in candidates if p.is_file() and p.name.endswith(TEST_SUFFIXES))
    return found


def run_rule_tests(paths: Iterable[Path]) -> list[TestFileResult[CaseResult]]:
    """Run every `*.test.yaml` under the paths; raises only for I/O errors."""
    return [run_test_file(p) for p in collect_test_files(paths)]


def run_test_file(path: Path) -> TestFileResult[CaseResult]:
    """Load one test file and its rules, and run each test."""
    return run_tests_in(path, RULE_TESTS)


def _run_cases(
    spec: RuleTestFileSpec,
    rules: LoadResult,
    locator: Locator,
    result: TestFileResult[CaseResult],
) -> None:
    known = {r.id for r in rules.rules}
    for t, case in enumerate(spec.tests):
        for e, expected in enumerate(case.expect):
            if expected.rule not in known:
                close = difflib.get_close_matches(expected.rule, sorted(known), n=1)
                result.issues.append(
                    ConfigIssue(
                        IssueCode.UNKNOWN_NAME,
                        f"test {case.name!r} expects an alert of unknown rule {expected.rule!r}",
                        locator.value(("tests", t, "expect", e, "rule")),
                        hint=f"did you mean '{close[0]}'?" if close else "check rule_files",
                    )
                )
    if result.errors:
        return
    horizon = max((r.within.horizon for r in rules.rules if r.within), default=timedelta(0))
    for t, case in enumerate(spec.tests):
        actual = evaluate(Ruleset(rules.rules), case, spec.start, horizon)
        result.cases.append(compare(case, actual, locator.value(("tests", t))))


RULE_TESTS = TestFormat(
    RuleTestFileSpec, "rule_files", "rule file", IssueCode.NO_RULES, load_rules, _run_cases
)


def evaluate(
    ruleset: Ruleset, case: CaseSpec, start: datetime, horizon: timedelta
) -> list[AlertLine]:
    """Run one test's events through a fresh driver on a fake clock (see the module docstring)."""
    driver = Driver(ruleset, DictStore())
    driver.keep_partitions([0])
    clock = FakeClock(start)
    findings: list[Finding] = []
    for index, spec in enumerate(case.events, start=1):
        when = start + spec.at
        if when > clock.current:
            findings.extend(driver.sweep(0, when - _TICK))
            clock.current = when
        event = Event(
            id=spec.id or f"e{index}",
            source=spec.source,
            type=spec.type,
            time=when,
            subject=spec.subject,
            data=spec.data,
        ).ref()
        for key, rule_ids in driver.routes(event).items():
            findings.extend(driver.apply(0, key, event, rule_ids, clock.now()))
    last = max((e.at for e in case.events), default=timedelta(0))
    until = start + (case.evaluate_until if case.evaluate_until is not None else last + horizon)
    findings.extend(driver.sweep(0, max(until, clock.current)))
    return [_line(alert_from(f), start) for f in findings]


def _line(alert: Alert, start: datetime) -> AlertLine:
    return AlertLine(
        alert.rule_id,
        alert.key,
        alert.status,
        alert.event_time - start,
        message=alert.message,
        severity=alert.severity,
        labels=tuple(sorted(alert.labels.items())),
        evidence=tuple((e.department, e.source, e.type, e.time - start) for e in alert.evidence),
    )


def compare(case: CaseSpec, actual: list[AlertLine], location: SourceLocation) -> CaseResult:
    """Match expected alerts to actual ones (exact times first, then `any time`); an expected
    alert that only came with other details is reported as differing, not missing."""
    expected = [
        AlertLine(
            x.rule,
            x.key,
            x.status,
            x.at,
            message=x.message,
            severity=x.severity,
            labels=None if x.labels is None else tuple(sorted(x.labels.items())),
            wanted_evidence=None if x.evidence is None else tuple(x.evidence),
        )
        for x in case.expect
    ]
    unmatched = list(actual)
    missing: list[AlertLine] = []
    near: list[AlertLine] = []
    for wanted in sorted(expected, key=lambda a: a.at is None):
        hit = next((a for a in unmatched if wanted.matches(a) and not wanted.differences(a)), None)
        if hit is None:
            near.append(wanted)
        else:
            unmatched.remove(hit)
    different = []
    for wanted in near:
        hit = next((a for a in unmatched if wanted.matches(a)), None)
        if hit is None:
            missing.append(wanted)
        else:
            unmatched.remove(hit)
            different.append((wanted, hit, wanted.differences(hit)))
    return CaseResult(case.name, location, expected, actual, missing, unmatched, different)
