"""Silences: matchers with an expiry; matching alerts are counted, not sent.

They are kept in a compacted topic (one record per silence id) so every notifier sees them;
`SilenceBook` is the in-memory view each notifier keeps of that topic.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from monitor.alerts.labels import LabelMatcher, parse_matcher


class Silence(BaseModel):
    """Mute alerts whose labels satisfy every matcher, from `starts_at` until `ends_at`."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    matchers: list[str] = Field(min_length=1)
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def compiled(self) -> list[LabelMatcher]:
        """The matchers, parsed (they were checked when the silence was made)."""
        return [parse_matcher(m) for m in self.matchers]

    def active(self, now: datetime) -> bool:
        """In force at `now`."""
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str]) -> bool:
        """Every matcher holds."""
        return all(m.matches(labels) for m in self.compiled())

    def expired(self, now: datetime) -> Silence:
        """The same silence, ending now."""
        return self.model_copy(update={"ends_at": min(self.ends_at, now)})

    def to_bytes(self) -> bytes:
        """The record value on the silences topic."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Silence:
        """Read a silence back from the topic."""
        return cls.model_validate_json(raw)


def new_silence(
    matchers: list[str], duration: timedelta, now: datetime, *, created_by: str, comment: str
) -> Silence:
    """A silence starting now; raises ValueError on a bad matcher."""
    for text in matchers:
        parse_matcher(text)
    return Silence(
        matchers=matchers,
        starts_at=now,
        ends_at=now + duration,
        created_by=created_by,
        comment=comment,
    )


class SilenceBook:
    """The current silences by id (the latest record wins, as in a compacted topic)."""

    def __init__(self) -> None:
        self.silences: dict[str, Silence] = {}

    def upsert(self, silence: Silence) -> None:
        """Add or replace one silence."""
        self.silences[silence.id] = silence

    def remove(self, silence_id: str) -> None:
        """Forget a silence (a tombstone on the topic)."""
        self.silences.pop(silence_id, None)

    def active(self, now: datetime) -> list[Silence]:
        """Silences in force at `now`."""
        return [s for s in self.silences.values() if s.active(now)]

    def silencing(self, labels: dict[str, str], now: datetime) -> Silence | None:
        """The first active silence that matches the labels, if any."""
        return next((s for s in self.active(now) if s.matches(labels)), None)
