"""The conflict board's state: open and recently resolved conflicts, rebuilt from `cx.alerts`.

`BoardState.ingest` takes the alerts in topic order (a firing alert opens a conflict, a resolved
one with the same fingerprint closes it); `view` answers one filtered request. Thread safety:
`ingest` runs on the notifier's event loop and `view` in the HTTP server's threads, so both
hold one lock; nothing else touches the conflicts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from monitor.alerts.labels import alert_labels
from monitor.alerts.model import Alert
from monitor.alerts.redact import Redaction
from monitor.alerts.silences import Silence, SilenceBook
from monitor.events.envelope import utcnow

MAX_OPEN = 5000
MAX_RESOLVED = 1000
RESOLUTIONS = {
    "remediated": "remediated",
    "follow-up arrived late": "late follow-up",
    "follow-up was on time but reached the monitor late": "late follow-up",
    "cancelled after the SLA was breached": "cancelled",
}


def resolution_of(resolved: Alert) -> str:
    """How a conflict closed, from the resolving alert's note."""
    return RESOLUTIONS.get(resolved.note or "", "resolved")


@dataclass
class Conflict:
    """One conflict: the alert that opened it and, once closed, how and when."""

    alert: Alert
    resolved_at: datetime | None = None
    resolution: str | None = None
    resolution_note: str | None = None

    def close(self, at: datetime, resolution: str, note: str | None, by: Alert | None) -> None:
        """Mark resolved; the resolving alert's evidence (with the remedy) replaces the timeline."""
        self.resolved_at = at
        self.resolution = resolution
        self.resolution_note = note
        if by is not None and len(by.evidence) >= len(self.alert.evidence):
            self.alert = self.alert.model_copy(update={"evidence": by.evidence})


@dataclass(frozen=True)
class Filters:
    """What a request asks for; each field is a set of accepted values (empty: any)."""

    owner: frozenset[str] = frozenset()
    severity: frozenset[str] = frozenset()
    rule: frozenset[str] = frozenset()
    gap: frozenset[str] = frozenset()
    text: str = ""

    @classmethod
    def from_query(cls, query: dict[str, list[str]]) -> Filters:
        """From parsed query parameters; values may repeat or be comma-separated."""

        def values(name: str) -> frozenset[str]:
            return frozenset(
                v.strip() for raw in query.get(name, []) for v in raw.split(",") if v.strip()
            )

        text = " ".join(query.get("q", [])).strip().lower()
        return cls(values("owner"), values("severity"), values("rule"), values("gap"), text)

    def key(self) -> str:
        """A stable text form, for the ETag."""
        parts = (self.owner, self.severity, self.rule, self.gap)
        return "|".join(",".join(sorted(p)) for p in parts) + "|" + self.text

    def accepts(self, alert: Alert) -> bool:
        """Whether the (already redacted) alert passes every filter."""
        if self.owner and not (self.owner & {*alert.owners, alert.labels.get("team", "")}):
            return False
        if self.severity and alert.severity not in self.severity:
            return False
        if self.rule and alert.rule_id not in self.rule:
            return False
        if self.gap and gap_of(alert) not in self.gap:
            return False
        return not self.text or self.text in searchable(alert)


def gap_of(alert: Alert) -> str:
    """`from>to`, as the `gap` filter writes it."""
    return f"{alert.from_department}>{alert.to_department}"


def searchable(alert: Alert) -> str:
    """The text free-text search looks in, lower case."""
    parts = [alert.rule_id, alert.title, alert.message, alert.key, alert.kind, *alert.owners]
    parts.extend(f"{k}={v}" for k, v in alert.labels.items())
    parts.extend(f"{e.department} {e.type}" for e in alert.evidence)
    return "\n".join(parts).lower()


@dataclass
class BoardState:
    """Open conflicts by fingerprint and the recently resolved, bounded in number and age."""

    expire_after: timedelta = timedelta(days=7)
    keep_resolved: timedelta = timedelta(days=1)
    redaction: Redaction | None = None
    clock: Callable[[], datetime] = utcnow
    max_open: int = MAX_OPEN
    max_resolved: int = MAX_RESOLVED
    observe: Callable[[int, int], None] | None = None  # (open, resolved) after each change
    version: int = 0
    updated_at: datetime | None = None
    unreadable: int = 0
    open: OrderedDict[str, Conflict] = field(default_factory=OrderedDict)
    resolved: OrderedDict[str, Conflict] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ingest_record(self, value: bytes | None) -> None:
        """One `cx.alerts` record; unreadable ones are counted and skipped (the notifier
        dead-letters them)."""
        if value is None:
            return
        try:
            alert = Alert.from_bytes(value)
        except ValidationError:
            self.unreadable += 1
            return
        self.ingest(alert)

    def ingest(self, alert: Alert) -> None:
        """Open, refresh or close the alert's conflict."""
        with self._lock:
            fingerprint = alert.fingerprint
            if alert.status == "firing":
                if fingerprint in self.resolved:
                    return  # a duplicate of an alert already resolved
                self.open[fingerprint] = Conflict(alert)
                self.open.move_to_end(fingerprint)
                while len(self.open) > self.max_open:
                    self.open.popitem(last=False)
            else:
                conflict = self.open.pop(fingerprint, None) or self.resolved.pop(fingerprint, None)
                if conflict is None:
                    conflict = Conflict(alert)
                at = max(alert.event_time, alert.detected_at)
                conflict.close(at, resolution_of(alert), alert.message, alert)
                self._add_resolved(fingerprint, conflict)
            self._changed()

    def _add_resolved(self, fingerprint: str, conflict: Conflict) -> None:
        self.resolved[fingerprint] = conflict
        while len(self.resolved) > self.max_resolved:
            self.resolved.popitem(last=False)

    def _changed(self) -> None:
        self.version += 1
        self.updated_at = self.clock()
        if self.observe is not None:
            self.observe(len(self.open), len(self.resolved))

    def expire(self, now: datetime) -> None:
        """Close conflicts open longer than `expire_after`; forget old resolved ones."""
        with self._lock:
            changed = False
            for fingerprint, conflict in list(self.open.items()):
                if now - conflict.alert.detected_at >= self.expire_after:
                    del self.open[fingerprint]
                    note = f"nobody resolved it within {self.expire_after}"
                    conflict.close(now, "expired", note, None)
                    self._add_resolved(fingerprint, conflict)
                    changed = True
            for fingerprint, conflict in list(self.resolved.items()):
                if conflict.resolved_at and now - conflict.resolved_at >= self.keep_resolved:
                    del self.resolved[fingerprint]
                    changed = True
            if changed:
                self._changed()

    def open_alerts(self) -> list[Alert]:
        """The firing alerts behind the open conflicts, unredacted (for re-posting)."""
        with self._lock:
            return [c.alert for c in self.open.values()]

    def view(
        self, filters: Filters, silences: Iterable[Silence], now: datetime, limit: int = 500
    ) -> dict[str, Any]:
        """The board for one request: filtered open and resolved conflicts, newest first, at
        most `limit` of each, with the facets (every value each filter could take) of all."""
        self.expire(now)
        active = [s for s in silences if s.active(now)]
        with self._lock:
            open_ = [(c, self._shown(c)) for c in self.open.values()]
            resolved = [(c, self._shown(c)) for c in self.resolved.values()]
            updated = self.updated_at
        facets = _facets([shown.alert for _, shown in open_ + resolved])
        shown_open, matched_open = _listing(
            open_, filters, active, lambda c: c.alert.event_time, limit
        )
        shown_resolved, matched_resolved = _listing(
            resolved, filters, active, lambda c: c.resolved_at or c.alert.event_time, limit
        )
        return {
            "updated_at": updated,
            "total_open": len(open_),
            "total_resolved": len(resolved),
            "matched_open": matched_open,
            "matched_resolved": matched_resolved,
            "open": shown_open,
            "resolved": shown_resolved,
            "facets": facets,
        }

    def _shown(self, conflict: Conflict) -> Conflict:
        """The conflict as the board may show it: the board's redaction applied."""
        if self.redaction is None:
            return conflict
        note = conflict.resolution_note
        if note is not None:  # the resolving alert's message quotes the key too
            note = self.redaction.apply(conflict.alert.model_copy(update={"message": note})).message
        return Conflict(
            self.redaction.apply(conflict.alert), conflict.resolved_at, conflict.resolution, note
        )


def _listing(
    conflicts: list[tuple[Conflict, Conflict]],
    filters: Filters,
    silences: list[Silence],
    order: Callable[[Conflict], datetime],
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """The first `limit` documents and how many matched. Of each (stored, shown) pair, filters
    and order see what is shown, silences the real labels."""
    kept = [pair for pair in conflicts if filters.accepts(pair[1].alert)]
    kept.sort(key=lambda pair: order(pair[1]), reverse=True)
    documents = [
        _document(shown, _silencing(stored.alert, silences)) for stored, shown in kept[:limit]
    ]
    return documents, len(kept)


def _silencing(alert: Alert, silences: list[Silence]) -> str | None:
    labels = alert_labels(alert)
    return next((s.id for s in silences if s.matches(labels)), None)


def _document(conflict: Conflict, silenced_by: str | None) -> dict[str, Any]:
    alert = conflict.alert
    return {
        **alert.model_dump(mode="json", exclude={"note"}),
        "status": "resolved" if conflict.resolved_at else "firing",
        "gap": gap_of(alert),
        "silenced_by": silenced_by,
        "resolved_at": conflict.resolved_at.isoformat() if conflict.resolved_at else None,
        "resolution": conflict.resolution,
        "resolution_note": conflict.resolution_note,
    }


def _facets(alerts: list[Alert]) -> dict[str, list[str]]:
    return {
        "owners": sorted({o for a in alerts for o in a.owners}),
        "severities": [
            s
            for s in ("critical", "high", "medium", "low", "info")
            if any(a.severity == s for a in alerts)
        ],
        "rules": sorted({a.rule_id for a in alerts}),
        "gaps": sorted({gap_of(a) for a in alerts}),
    }


def silence_documents(book: SilenceBook, now: datetime) -> list[dict[str, Any]]:
    """Active silences first (soonest to end first), then those ended in the last day."""
    silences = list(dict(book.silences).values())  # a copy: the notifier's loop updates it
    recent = [s for s in silences if s.active(now) or now - s.ends_at < timedelta(days=1)]
    recent.sort(key=lambda s: (not s.active(now), _order(s, now)))
    return [{**s.model_dump(mode="json"), "active": s.active(now)} for s in recent]


def _order(silence: Silence, now: datetime) -> float:
    """Active: the soonest to end first; ended: the latest to end first."""
    ends = silence.ends_at.timestamp()
    return ends if silence.active(now) else -ends
