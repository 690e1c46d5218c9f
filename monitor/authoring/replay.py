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

The driver (monitor/engine/driver.py) runs the events, as in the worker, over a dict store: it
sweeps a state only when its due index says a sweep can change it (a deadline, or something to
forget), so the time is linear in the number of events; before an event touches a state that is
due, the state is swept at the event's time first.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from monitor.alerts import Alert, alert_from
from monitor.engine.driver import Admission, DictStore, Driver
from monitor.engine.reorder import ReorderBuffer
from monitor.engine.ruleset import Ruleset
from monitor.engine.state import Finding
from monitor.engine.stored import split_slot
from monitor.events import EventRef, Rejected, RejectReason
from monitor.events.codec import DEFAULT_MAX_DATA_DEPTH, DEFAULT_MAX_EVENT_BYTES
from monitor.events.fast import decode_ref

PARTITION = 0  # a recording is one stream
_UNBOUNDED = timedelta.max
_TICK = timedelta(microseconds=1)
_Emit = Callable[[Sequence[Finding]], None]


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
    decode_line: Callable[[bytes], EventRef | None] | None = None,
) -> ReplayResult:
    """Run every record through a fresh driver in arrival order, on the event-time watermark.

    `decode_line` turns a line into an event (None: skipped, `Rejected`: rejected); by default
    lines are CloudEvents. `cxmon replay --as-topic` passes a source mapping here.
    """
    # The cyclic collector's full passes walk every state held, so their cost grows with the
    # recording (12-18% of a 50k-200k replay, measured); states hold no cycles, and whatever
    # cyclic garbage a replay makes is collected when it ends.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _replay(lines, ruleset, lateness, decode_line)
    finally:
        if collecting:
            gc.enable()


def _replay(
    lines: Iterable[bytes],
    ruleset: Ruleset,
    lateness: timedelta,
    decode_line: Callable[[bytes], EventRef | None] | None,
) -> ReplayResult:
    result = ReplayResult()
    # The cache is the whole state; nothing is stored, so forgetting can wait for the next event.
    driver = Driver(ruleset, DictStore(), cache_slots=2**62, defer_forgetting=True)
    driver.keep_partitions([PARTITION])
    admission = Admission(
        lateness=lateness,
        max_age=_UNBOUNDED,
        max_ahead=_UNBOUNDED,
        max_bytes=DEFAULT_MAX_EVENT_BYTES,
        max_depth=DEFAULT_MAX_DATA_DEPTH,
    )
    buffer = ReorderBuffer(lateness)
    errors_before = Counter(ruleset.eval_errors)
    clock: datetime | None = None

    def emit(findings: Sequence[Finding]) -> None:
        for finding in findings:
            alert = alert_from(finding)
            result.alerts.append(alert)
            result.per_rule[alert.rule_id] += 1

    for line_no, raw in enumerate(lines, start=1):
        if not raw or raw.isspace():
            continue
        event = _admit(raw, line_no, decode_line, admission, result)
        if event is None:
            continue
        result.events += 1
        if event.time < buffer.highest:
            result.out_of_order += 1
        # Events leave the buffer in event-time order once no earlier one can still arrive, so
        # the alerts are those of the sorted file whatever the arrival order within the lateness.
        for ready in buffer.push(event):
            seen = ruleset.duplicates
            clock = _step(driver, ready, clock, emit)
            result.duplicates += ruleset.duplicates > seen
        ruleset.handoffs.clear()  # time-to-handoff is a live metric; a backtest has no use for it
    for ready in buffer.drain():
        seen = ruleset.duplicates
        clock = _step(driver, ready, clock, emit)
        result.duplicates += ruleset.duplicates > seen
    if clock is not None:
        emit(driver.sweep(PARTITION, buffer.highest))
    ruleset.handoffs.clear()
    _count_pending(driver, result)
    result.eval_errors = Counter(ruleset.eval_errors)
    result.eval_errors.subtract(errors_before)
    result.eval_errors = +result.eval_errors
    return result


def _admit(
    raw: bytes,
    line_no: int,
    decode_line: Callable[[bytes], EventRef | None] | None,
    admission: Admission,
    result: ReplayResult,
) -> EventRef | None:
    """The line's event, or None: skipped, or rejected (recorded in `result`). The late-event
    rule is the worker's (`Admission.order`), over the file as one stream."""
    try:
        if decode_line is None:
            return admission.order(PARTITION, decode_ref(raw))
        event = decode_line(raw)
        if event is None:
            result.skipped += 1
            return None
        return admission.order(PARTITION, event)
    except Rejected as rejected:
        result.rejected.append(RejectedLine(line_no, rejected.reason, rejected.detail))
        return None


def _count_pending(driver: Driver, result: ReplayResult) -> None:
    """Expectations still open at the end of the file: how many per rule, and the next due."""
    for slot, state in driver.states():
        rule_id = split_slot(slot)[0]
        for expectation in state.expectations:
            if expectation.breached_at is None:
                result.pending[rule_id] += 1
                known = result.next_due.get(rule_id)
                result.next_due[rule_id] = min(known or expectation.due, expectation.due)


def _step(driver: Driver, event: EventRef, clock: datetime | None, emit: _Emit) -> datetime:
    """Fire what was due strictly before the event, then apply the event at its own time."""
    just_before = event.time - _TICK
    if clock is None or just_before > clock:
        clock = just_before
        if driver.may_sweep(PARTITION, clock):  # most events: nothing is due yet
            emit(driver.sweep(PARTITION, clock))
    for key, rule_ids in driver.routes(event).items():
        emit(driver.apply(PARTITION, key, event, rule_ids, event.time, catch_up=True))
    return clock


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
