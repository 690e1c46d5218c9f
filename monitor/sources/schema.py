"""The source-mapping format ops teams write (`*Spec`), as pydantic models (docs/sources.md)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Spec):
    """How the records of one topic become events: a CEL expression per envelope field."""

    topic: str = Field(min_length=1, description="the Kafka topic, read as it is")
    department: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][\w.-]*$", description="becomes `source`"
    )
    source: str | None = Field(default=None, description="CEL: the CloudEvents source")
    when: str | None = Field(default=None, description="CEL: false skips the record")
    id: str = Field(description="CEL: unique per source")
    type: str = Field(description="CEL: the event type")
    time: str = Field(description="CEL: RFC 3339 text, a timestamp, or a number (time_unit)")
    time_unit: Literal["s", "ms", "us"] = "s"
    subject: str = Field(description="CEL: the customer id")
    data: str | None = Field(default=None, description="CEL: a map; default: the whole value")


CEL_FIELDS = ("when", "source", "id", "type", "time", "subject", "data")


class MappingFileSpec(_Spec):
    """A whole mapping file (its `sources` are validated one by one)."""

    FILE_KIND: ClassVar[str] = "a mapping file"
    FILE_SHAPE: ClassVar[str] = "`version: 1` and `sources:`"

    version: Literal[1]
    lists: dict[str, list[Any]] = Field(default_factory=dict)
    macros: dict[str, str] = Field(default_factory=dict)
    sources: list[Any] = Field(default_factory=list)
