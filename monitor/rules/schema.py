"""The rule-file format ops teams write (`*Spec`), as pydantic models; `rules/schema.json` comes from here."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from monitor.config.fields import WORKWEEK, Duration, Weekday
from monitor.engine.kinds import KINDS


def _known_kind(value: str) -> str:
    if value not in KINDS:
        names = [repr(name) for name in KINDS]
        raise PydanticCustomError(
            "literal_error",
            "Input should be {expected}",
            {"expected": f"{', '.join(names[:-1])} or {names[-1]}"},
        )
    return value


# One of the registered kinds (monitor.engine.kinds); the JSON schema lists those shipped.
KindName = Annotated[
    str,
    AfterValidator(_known_kind),
    WithJsonSchema({"enum": list(KINDS), "type": "string"}),
]

Severity = Literal["info", "low", "medium", "high", "critical"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatcherSpec(_Spec):
    """Which events fill a slot: department/source, type, and an optional CEL condition."""

    source: str | list[str] | None = Field(
        default=None, description="department (first segment of `source`) or exact source"
    )
    type: str | list[str] | None = Field(
        default=None,
        description="event type, e.g. invoice.charged; leave it out to select with `where` alone",
    )
    where: str | None = Field(default=None, description="CEL condition over the event")


class BusinessTimeSpec(_Spec):
    """An SLA counted in business time against a named calendar."""

    business: Duration
    calendar: str


class RuleSpec(_Spec):
    """One conflict rule."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="unique slug")
    title: str
    description: str | None = None
    kind: KindName
    severity: Severity = "medium"
    owners: list[str] = Field(default_factory=list, description="departments, in gap direction")
    key: str = Field(default="subject", description="CEL over the event; the correlation key")
    message: str | None = Field(default=None, description="Jinja2 template")
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    realert: Duration | None = None
    status: Literal["experimental", "test", "stable"] = "experimental"
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    first: MatcherSpec | None = None
    then: MatcherSpec | None = None
    open: MatcherSpec | None = None
    close: MatcherSpec | None = None
    cancel: MatcherSpec | None = None
    match: MatcherSpec | None = None
    resolve_on: MatcherSpec | None = None
    within: Duration | BusinessTimeSpec | None = None
    threshold: int | None = Field(default=None, ge=2)
    distinct: str | None = Field(default=None, description="CEL value counted distinctly")


class DefaultsSpec(_Spec):
    """Values applied to every rule of the file that does not set them."""

    severity: Severity | None = None
    owners: list[str] | None = None
    key: str | None = None
    labels: dict[str, str] | None = None
    runbook: str | None = None
    realert: Duration | None = None
    status: Literal["experimental", "test", "stable"] | None = None
    tags: list[str] | None = None


def _iso_date(value: Any) -> Any:
    # YAML reads an unquoted 2026-12-25 as a date, not a string: take it as what was meant.
    return value.isoformat() if isinstance(value, date) else value


HolidayDate = Annotated[str, BeforeValidator(_iso_date)]


class CalendarSpec(_Spec):
    """Working hours in a time zone, minus holidays, for business-time SLAs."""

    timezone: str = "UTC"
    days: list[Weekday] = Field(default_factory=lambda: list(WORKWEEK))
    hours: str = Field(default="09:00-17:00", pattern=r"^\d\d:\d\d-\d\d:\d\d$")
    holidays: list[HolidayDate] = Field(default_factory=list, description="ISO dates, YYYY-MM-DD")


class RuleFileSpec(_Spec):
    """A whole rule file."""

    FILE_KIND: ClassVar[str] = "a rule file"
    FILE_SHAPE: ClassVar[str] = "`version: 1` and `rules:`"

    version: Literal[1]
    lists: dict[str, list[Any]] = Field(default_factory=dict)
    macros: dict[str, str] = Field(default_factory=dict)
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)
