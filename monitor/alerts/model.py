"""The alert: a finding made durable and readable, with a stable fingerprint."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.config.durations import humanize
from monitor.engine.state import Finding
from monitor.events import EventRef


class EvidenceItem(BaseModel):
    """One step of the cross-department timeline: which department did what, when."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    department: str
    source: str
    type: str
    id: str
    slot: str


class Alert(BaseModel):
    """What goes to `cx.alerts` and, from there, to team channels."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    status: Literal["firing", "resolved"]
    rule_id: str
    kind: str
    title: str
    severity: str
    owners: list[str]
    from_department: str
    to_department: str
    key: str
    message: str
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    event_time: datetime
    detected_at: datetime
    raised_at: datetime | None = None  # resolved: when the alert it resolves fired
    note: str | None = None
    evidence: list[EvidenceItem] = Field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The JSON written to `cx.alerts`."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Alert:
        """Read an alert back from `cx.alerts`."""
        return cls.model_validate_json(raw)

    def one_line(self) -> str:
        """A console line: status, severity, rule, key and message."""
        mark = "FIRING" if self.status == "firing" else "RESOLVED"
        return f"[{mark}] {self.severity.upper()} {self.rule_id} key={self.key}: {self.message}"


def fingerprint(rule_id: str, key: str, identity: tuple[str, ...]) -> str:
    """Stable id of a conflict: the same rule, key and events always give the same value."""
    digest = hashlib.sha256("\x1f".join((rule_id, key, *identity)).encode()).hexdigest()
    return digest[:20]


def alert_from(finding: Finding) -> Alert:
    """Turn a finding into an alert, rendering the rule's message with the events in scope."""
    rule = finding.rule
    evidence = [
        EvidenceItem(
            time=ref.time,
            department=ref.department,
            source=ref.source,
            type=ref.type,
            id=ref.id,
            slot=_slot_of(finding, ref),
        )
        for ref in finding.evidence
    ]
    context: dict[str, Any] = {
        "key": finding.key,
        "rule": {"id": rule.id, "title": rule.title, "severity": rule.severity},
        "status": finding.status,
        "late_by": finding.late_by,
        "note": finding.note,
        **{slot: ref.to_cel() for slot, ref in finding.bindings.items()},
        **finding.extra,
    }
    if finding.status == "resolved" and not (rule.message and rule.message.reads_status):
        # The author's message describes the conflict as it stands ("... has not held a
        # kickoff"); on a resolution that would now be untrue, so the update says what happened.
        message = _resolution(finding)
    elif rule.message is not None:
        message = rule.message.render(context, rule.title)
    else:
        message = rule.title
    source, target = rule.gap
    return Alert(
        fingerprint=fingerprint(rule.id, finding.key, finding.identity),
        status=finding.status,
        rule_id=rule.id,
        kind=rule.kind,
        title=rule.title,
        severity=rule.severity,
        owners=list(rule.owners),
        from_department=source,
        to_department=target,
        key=finding.key,
        message=message,
        labels=dict(rule.labels),
        runbook=rule.runbook,
        event_time=finding.event_time,
        detected_at=finding.detected_at,
        raised_at=finding.raised_at,
        note=finding.note,
        evidence=evidence,
    )


def _slot_of(finding: Finding, ref: EventRef) -> str:
    for slot, bound in finding.bindings.items():
        if bound.id == ref.id and bound.source == ref.source:
            return slot
    return "event"


def _resolution(finding: Finding) -> str:
    answer = finding.bindings.get("then") or finding.bindings.get("cancel")
    if answer is not None and finding.late_by is not None:
        what = f"{answer.department} sent {answer.type}"
        if finding.late_by.total_seconds() > 0:
            return f"Resolved: {what} {humanize(finding.late_by)} after the deadline"
        return f"Resolved: {what} in time; it reached the monitor late"
    remedy = finding.bindings.get("resolve_on")
    if remedy is not None:
        return f"Resolved: {remedy.department} sent {remedy.type}"
    return f"Resolved: {finding.note}" if finding.note else "Resolved"
