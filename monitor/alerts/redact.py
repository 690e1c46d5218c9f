"""PII per receiver: fields replaced by a stable hash or dropped before an alert is rendered."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from monitor.alerts.config import RedactSpec
from monitor.alerts.model import Alert, EvidenceItem

DROPPED = "[redacted]"


def pseudonym(value: str) -> str:
    """A stable, short stand-in: the same customer gives the same hash in every message."""
    return "h:" + hashlib.sha256(value.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Redaction:
    """What one receiver must not see in clear."""

    hash: frozenset[str]
    drop: frozenset[str]

    @classmethod
    def from_spec(cls, spec: RedactSpec | None) -> Redaction | None:
        """None when the receiver redacts nothing."""
        if spec is None or not (spec.hash or spec.drop):
            return None
        return cls(frozenset(spec.hash), frozenset(spec.drop))

    def apply(self, alert: Alert) -> Alert:
        """A copy of the alert with the configured fields hashed or dropped.

        A hashed or dropped `key` is also replaced inside the message and note, which usually
        quote it.
        """
        update: dict[str, object] = {}
        message, note = alert.message, alert.note
        if "key" in self.drop or "key" in self.hash:
            stand_in = DROPPED if "key" in self.drop else pseudonym(alert.key)
            update["key"] = stand_in
            message = message.replace(alert.key, stand_in)
            note = note.replace(alert.key, stand_in) if note else note
        update["message"] = self._field("message", message)
        update["note"] = self._field("note", note) if note else note
        if alert.runbook:
            update["runbook"] = self._field("runbook", alert.runbook)
        update["labels"] = self._labels(alert.labels)
        update["evidence"] = self._evidence(alert.evidence)
        return alert.model_copy(update=update)

    def _field(self, name: str, value: str) -> str:
        if name in self.drop:
            return DROPPED
        if name in self.hash:
            return pseudonym(value)
        return value

    def _labels(self, labels: dict[str, str]) -> dict[str, str]:
        if "labels" in self.drop:
            return {}
        kept: dict[str, str] = {}
        for name, value in labels.items():
            path = f"labels.{name}"
            if path in self.drop:
                continue
            kept[name] = pseudonym(value) if path in self.hash or "labels" in self.hash else value
        return kept

    def _evidence(self, evidence: list[EvidenceItem]) -> list[EvidenceItem]:
        if "evidence" in self.drop:
            return []
        if "evidence.id" in self.drop or "evidence.id" in self.hash or "evidence" in self.hash:
            stand_in = (lambda _: DROPPED) if "evidence.id" in self.drop else pseudonym
            return [item.model_copy(update={"id": stand_in(item.id)}) for item in evidence]
        return evidence
