"""Backtest: run a rule set over recorded events (JSON Lines) in event time, and diff two runs.

Contract:
- Lines are records in arrival order (file order), one stream: one `Watermark`. Blank lines are
  skipped; a line that does not decode, or whose event time is behind the watermark (more than
  `lateness` older than the newest event so far), is rejected with its 1-based line number and
  reason, and processing goes on.
- Accepted events wait in a `ReorderBuffer` until the watermark (newest event time minus
  `lateness`) passes them, and reach the engine in event-time order: a file shuffled within the
  lateness gives exactly the alerts of the sorted file. Before each event the clock moves to just
  before its time, so deadlines fire in event time and a follow-up that comes after its
  deadline resolves the alert; the event is applied at its own time.
- End of input means nothing older can arrive: the clock is advanced to the newest event time, so
  every deadline up to the last event fires; later deadlines stay pending: counted per rule in
  `pending`, with the earliest in `next_due`, not reported as alerts.
- `duplicates` counts events some rule had already processed (same `source` and `id`: a
  producer's retry), `out_of_order` the events older than one that arrived before them.
- Pure: no Kafka, no printing; the rule set's `eval_errors` and `handoffs` are drained into the
  result.

Sweeping every state at every watermark step is quadratic (minutes for 30k events), so the
`WatermarkDetector` sweeps a state only when the clock passes one of its deadlines (the
`expectations` of `KeyState`), just before an event touches it, and all of them once per day of
event time (to forget what expired). Sweeps only filter by `now` and fire due expectations, so the
findings are the same as sweeping everything at every step; `test_replay.py` checks that.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from monitor.alerts import Alert, alert_from
from monitor.config.durations import format_duration
from monitor.engine.detector import Detector
from monitor.engine.reorder import ReorderBuffer
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding, KeyState
from monitor.events import Event, Rejected, RejectReason
from monitor.events.codec import decode

Slot = tuple[str, str]
COMPACT_EVERY = timedelta(days=1)


class RejectedLine(NamedTuple):
    """A record that did not reach the engine: where it was, and why."""

    line_no: int
    reason: RejectReason
    detail: str


@dataclass
class ReplayResult:
    """What a rule set would have raised over a recording."""

    alerts: list[Alert] = field(default_factory=list)
    rejected: list[RejectedLine] = field(default_factory=list)
    per_rule: Counter[str] = field(default_factory=Counter)
    events: int = 0
    skipped: int = 0  # records a source mapping's `when` skipped
    eval_errors: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0  # events a rule had already seen (same source and id): ignored
    out_of_order: int = 0  # events older than one before them (within the lateness: reordered)
    pending: Counter[str] = field(default_factory=Counter)  # per rule: deadlines not reached
    next_due: dict[str, datetime] = field(default_factory=dict)  # per rule: the earliest of them

    @property
    def rejects_by_reason(self) -> Counter[str]:
        """How many records were rejected, per reason."""
        return Counter(str(r.reason) for r in self.rejected)


def replay(
    lines: Iterable[bytes],
    ruleset: Ruleset,
    lateness: timedelta,
    decode_line: Callable[[bytes], Event | None] | None = None,
) -> ReplayResult:
    """Run every record through a fresh detector in arrival order, on the event-time watermark.

    `decode_line` turns a line into an event (None: skipped, `Rejected`: rejected); by default
    lines are CloudEvents. `cxmon replay --as-topic` passes a source mapping here.
    """
    result = ReplayResult()
    to_event = decode_line or decode
    detector = WatermarkDetector(ruleset)
    buffer = ReorderBuffer(lateness)
    errors_before = Counter(ruleset.eval_errors)
    clock: datetime | None = None

    def emit(findings: Sequence[Finding]) -> None:
        for finding in findings:
            alert = alert_from(finding)
            result.alerts.append(alert)
            result.per_rule[alert.rule_id] += 1

    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        event = _admit(raw, line_no, to_event, buffer, result)
        if event is None:
            continue
        result.events += 1
        if event.time < buffer.highest:
            result.out_of_order += 1
        # Events leave the buffer in event-time order once no earlier one can still arrive, so
        # the alerts are those of the sorted file whatever the arrival order within the lateness.
        for ready in buffer.push(event):
            seen = ruleset.duplicates
            clock = _step(detector, ready, clock, emit)
            result.duplicates += ruleset.duplicates > seen
        ruleset.handoffs.clear()  # time-to-handoff is a live metric; a backtest has no use for it
    for ready in buffer.drain():
        seen = ruleset.duplicates
        clock = _step(detector, ready, clock, emit)
        result.duplicates += ruleset.duplicates > seen
    if clock is not None:
        emit(detector.advance(buffer.highest))
    _count_pending(detector, result)
    result.eval_errors = Counter(ruleset.eval_errors)
    result.eval_errors.subtract(errors_before)
    result.eval_errors = +result.eval_errors
    return result


def _admit(
    raw: bytes,
    line_no: int,
    to_event: Callable[[bytes], Event | None],
    buffer: ReorderBuffer,
    result: ReplayResult,
) -> Event | None:
    """The line's event, or None: skipped, or rejected (recorded in `result`)."""
    try:
        event = to_event(raw)
        if event is None:
            result.skipped += 1
            return None
        if buffer.is_too_late(event):
            raise Rejected(
                RejectReason.TOO_LATE,
                f"event time {event.time.isoformat()} is behind the watermark "
                f"{buffer.watermark.isoformat()} (lateness {format_duration(buffer.lateness)})",
            )
    except Rejected as rejected:
        result.rejected.append(RejectedLine(line_no, rejected.reason, rejected.detail))
        return None
    return event


def _count_pending(detector: WatermarkDetector, result: ReplayResult) -> None:
    """Expectations still open at the end of the file: how many per rule, and the next due."""
    for (rule_id, _), state in detector.states.items():
        for expectation in state.expectations:
            if expectation.breached_at is None:
                result.pending[rule_id] += 1
                known = result.next_due.get(rule_id)
                result.next_due[rule_id] = min(known or expectation.due, expectation.due)


def _step(
    detector: WatermarkDetector,
    event: Event,
    clock: datetime | None,
    emit: Callable[[Sequence[Finding]], None],
) -> datetime:
    """Fire what was due strictly before the event, then apply the event at its own time."""
    just_before = event.time - timedelta(microseconds=1)
    if clock is None or just_before > clock:
        clock = just_before
        emit(detector.tick(clock))
    emit(detector.process(event, event.time))
    return clock


class WatermarkDetector(Detector):
    """A `Detector` that sweeps a state only when it can matter (see the module docstring)."""

    def __init__(self, ruleset: Ruleset) -> None:
        super().__init__(ruleset)
        self._wakes: list[tuple[datetime, str, str]] = []  # heap of (when, rule id, key)
        self._scheduled: dict[Slot, datetime] = {}
        self._compacted: datetime | None = None

    def process(self, event: Event, now: datetime) -> list[Finding]:
        """Bring each state the event touches up to `now`, then apply the event to it."""
        findings: list[Finding] = []
        ref = event.ref()
        for route in self.ruleset.routes(event):
            slot = (route.rule.id, route.key)
            state = self.states.get(slot)
            if state is None:
                state = KeyState()
            else:
                findings.extend(self.ruleset.sweep(route.rule, route.key, state, now))
            findings.extend(self.ruleset.step(route.rule, route.key, state, ref, now))
            self._keep(slot, state)
        return findings

    def tick(self, now: datetime) -> list[Finding]:
        """Move the clock: sweep the states with a deadline up to `now` (and, daily, all)."""
        if self._compacted is None or now - self._compacted >= COMPACT_EVERY:
            self._compacted = now
            due = list(self.states)
        else:
            due = []
            while self._wakes and self._wakes[0][0] <= now:
                when, rule_id, key = heapq.heappop(self._wakes)
                if self._scheduled.get((rule_id, key)) == when:
                    del self._scheduled[(rule_id, key)]
                    due.append((rule_id, key))
        findings: list[Finding] = []
        for slot in due:
            state, rule = self.states.get(slot), self.ruleset.rules.get(slot[0])
            if state is None or rule is None:
                self.states.pop(slot, None)
                continue
            findings.extend(self.ruleset.sweep(rule, slot[1], state, now))
            self._keep(slot, state)
        return findings

    def _keep(self, slot: Slot, state: KeyState) -> None:
        if state.is_empty():
            self.states.pop(slot, None)
            return
        self.states[slot] = state
        wake = next_deadline(state)
        if wake is not None and wake != self._scheduled.get(slot):
            self._scheduled[slot] = wake
            heapq.heappush(self._wakes, (wake, *slot))


def next_deadline(state: KeyState) -> datetime | None:
    """When a sweep of this state would next report something: the earliest pending deadline."""
    return min((e.due for e in state.expectations if e.breached_at is None), default=None)


AlertIdentity = tuple[str, str, str, str]


def identity(alert: Alert) -> AlertIdentity:
    """What makes two backtest alerts the same: rule, key, status and fingerprint."""
    return (alert.rule_id, alert.key, alert.status, alert.fingerprint)


@dataclass(frozen=True)
class AlertDiff:
    """How a candidate rule set's alerts differ from a baseline's over the same events."""

    added: list[Alert]
    removed: list[Alert]
    unchanged: int


def diff_alerts(candidate: Sequence[Alert], baseline: Sequence[Alert]) -> AlertDiff:
    """Alerts only the candidate raises (added) and only the baseline raises (removed), in order."""
    new = {identity(a) for a in candidate}
    old = {identity(a) for a in baseline}
    added = _unique(a for a in candidate if identity(a) not in old)
    removed = _unique(a for a in baseline if identity(a) not in new)
    return AlertDiff(added, removed, len(new & old))


def _unique(alerts: Iterable[Alert]) -> list[Alert]:
    seen: set[AlertIdentity] = set()
    kept = []
    for alert in alerts:
        if identity(alert) not in seen:
            seen.add(identity(alert))
            kept.append(alert)
    return kept
