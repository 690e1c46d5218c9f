"""The `alerting.yaml` format (`*Spec`): receivers, the route tree, rate limits, PII redaction."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from monitor.config.fields import WEEKDAYS, Weekday
from monitor.config.fields import DurationOrZero as Duration

ChannelType = Literal["apprise", "webhook", "console", "kafka", "alertmanager"]
REDACTABLE = ("key", "message", "note", "evidence", "evidence.id", "labels", "runbook")
_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ChannelSpec(_Spec):
    """One destination. A plain string in the file is short for `{url: ...}`."""

    url: str | None = Field(
        default=None,
        description="Apprise URL, console://, kafka://TOPIC, alertmanager://HOST:PORT, "
        "or the webhook URL",
    )
    url_file: str | None = Field(default=None, description="read the URL from this file")
    type: ChannelType | None = Field(
        default=None, description="default: console/kafka/alertmanager by scheme, else apprise"
    )
    secret: str | None = Field(default=None, description="webhook HMAC-SHA256 key, e.g. ${VAR}")
    secret_file: str | None = None
    timeout: Duration = timedelta(seconds=10)
    resend: Duration = Field(
        default=timedelta(minutes=1),
        description="alertmanager: re-post alerts still firing this often",
    )
    key_label: bool = Field(
        default=False, description="alertmanager: add the customer key as the `key` label"
    )

    @field_validator("resend")
    @classmethod
    def _resend(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise PydanticCustomError("resend", "resend must be at least 1s")
        return value

    def kind(self) -> ChannelType:
        """The channel type, from `type` or the URL's scheme."""
        if self.type is not None:
            return self.type
        url = self.url or ""
        if url.startswith("console:"):
            return "console"
        if url.startswith("kafka:"):
            return "kafka"
        if url.startswith(("alertmanager:", "alertmanagers:")):
            return "alertmanager"
        return "apprise"


class RedactSpec(_Spec):
    """PII handling for one receiver: fields to replace by a hash, fields to leave out."""

    hash: list[str] = Field(
        default_factory=list, description=f"any of {', '.join(REDACTABLE)} or labels.NAME"
    )
    drop: list[str] = Field(default_factory=list)

    @field_validator("hash", "drop")
    @classmethod
    def _known(cls, fields: list[str]) -> list[str]:
        for name in fields:
            if name not in REDACTABLE and not name.startswith("labels."):
                raise PydanticCustomError(
                    "redact_field",
                    "cannot redact {name!r}; use one of {known} or labels.NAME",
                    {"name": name, "known": ", ".join(REDACTABLE)},
                )
        return fields


class RateLimitSpec(_Spec):
    """At most `count` notifications per `per` to this receiver; more wait, none are dropped."""

    count: int = Field(gt=0)
    per: Duration


class ReceiverSpec(_Spec):
    """A named set of channels that get the same notifications."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    channels: list[str | ChannelSpec] = Field(min_length=1)
    redact: RedactSpec | None = None
    rate_limit: RateLimitSpec | None = None

    def channel_specs(self) -> list[ChannelSpec]:
        """Every channel in mapping form."""
        return [c if isinstance(c, ChannelSpec) else ChannelSpec(url=c) for c in self.channels]


class TimeWindowSpec(_Spec):
    """Days and hours in a time zone, e.g. working hours."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))
    hours: str | None = Field(default=None, description="HH:MM-HH:MM, local time")
    timezone: str = "UTC"

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not _HOURS.match(value):
            raise PydanticCustomError(
                "hours", "expected hours like '09:00-17:00', got {v!r}", {"v": value}
            )
        return value


class RouteSpec(_Spec):
    """A node of the routing tree; unset settings are inherited from the parent."""

    receiver: str | None = None
    match: dict[str, str | list[str]] = Field(
        default_factory=dict, description="label equals value (or any of the values)"
    )
    match_re: dict[str, str] = Field(default_factory=dict, description="label matches regex")
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSpec] = Field(default_factory=list)
    active_time: list[TimeWindowSpec] = Field(default_factory=list)
    mute_time: list[TimeWindowSpec] = Field(default_factory=list)


class BoardSpec(_Spec):
    """The conflict board the notifier serves."""

    redact: RedactSpec | None = None


class AlertingFileSpec(_Spec):
    """`alerting.yaml`: who hears about which alerts, and how."""

    FILE_KIND: ClassVar[str] = "an alerting file"
    FILE_SHAPE: ClassVar[str] = "`version: 1`, `receivers:` and `route:`"

    version: Literal[1]
    receivers: list[ReceiverSpec] = Field(min_length=1)
    route: RouteSpec
    board: BoardSpec = Field(default_factory=BoardSpec)
