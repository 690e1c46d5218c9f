"""The event envelope every department's record is turned into (CloudEvents 1.0 attributes)."""

from __future__ import annotations

from dataclasses import field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.records import record


@lru_cache(maxsize=4096)  # a company has few sources; events repeat them endlessly
def department_of(source: str) -> str:
    """The department named by a CloudEvents `source`: `billing`, `/billing/eu`, `kafka://billing/x`."""
    rest = source.split("://", 1)[1] if "://" in source else source
    for segment in rest.split("/"):
        if segment:
            return segment
    return source


class Event(BaseModel):
    """One thing a department did for a customer, in event time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime
    subject: str = Field(min_length=1)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("time must carry a UTC offset, e.g. 2026-05-01T09:30:00Z")
        return value.astimezone(UTC)

    @property
    def department(self) -> str:
        """The department that emitted the event (first segment of `source`)."""
        return department_of(self.source)

    def ref(self) -> EventRef:
        """A compact reference kept in state and alert evidence."""
        return EventRef(self.id, self.source, self.type, self.time, self.subject, self.data)

    def to_cel(self) -> dict[str, Any]:
        """The event as CEL and templates see it (built once per event)."""
        return cel_view(self)


@record
class EventRef:
    """An event as remembered in state and shown as evidence.

    A plain slotted class, not a pydantic model: state keeps one per remembered event, and each
    is built from an `Event` that was validated already (`KeyState.from_json` reads stored ones).
    """

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    data: dict[str, Any] = field(default_factory=dict)
    # The text `time` was read from, when the decoder read it in the form state stores
    # (`fast.STORED_TIME`): state writes it as it is (`stored.ref_text`). Not part of the value.
    time_text: str | None = field(default=None, compare=False, repr=False)
    # Its JSON as state stores it, made the first time a state holding it is written
    # (`stored.ref_text`): a state is written again at each change, with every event it holds,
    # and one event is often held by several rules. Not part of the value.
    stored_text: str | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def department(self) -> str:
        """The department that emitted the event."""
        return department_of(self.source)

    def to_cel(self) -> dict[str, Any]:
        """The remembered event as CEL and templates see it."""
        return cel_view(self)


def cel_view(event: Event | EventRef) -> dict[str, Any]:
    """An event as CEL conditions and message templates see it."""
    return {
        "id": event.id,
        "source": event.source,
        "department": department_of(event.source),
        "type": event.type,
        "time": event.time,
        "subject": event.subject,
        "data": event.data,
    }


def utcnow() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)
