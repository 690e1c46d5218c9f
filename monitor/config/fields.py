"""Value types every config file shares: durations (zero allowed or not) and weekday names."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from monitor.config.durations import format_duration, parse_duration

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)  # Monday first, as `date.weekday()` counts
WORKWEEK: tuple[Weekday, ...] = WEEKDAYS[:5]
_ZERO = re.compile(r"^(0+[smhdw]?)+$")


def parse_offset(text: str | int) -> timedelta:
    """A duration that may be zero (`0`, `0s`, `0d0h`); raises ValueError."""
    if isinstance(text, int) and not isinstance(text, bool) and text == 0:
        return timedelta(0)
    if not isinstance(text, str):
        raise ValueError(f"expected a duration like '0s', '15m' or '2d', got {text!r}")
    if _ZERO.match(text.strip()):
        return timedelta(0)
    return parse_duration(text)


def _validator(*, zero: bool) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, timedelta):
            return value
        if not zero and not isinstance(value, str):
            raise PydanticCustomError(
                "duration", "expected a duration like '15m', got {value}", {"value": repr(value)}
            )
        try:
            return parse_offset(value) if zero else parse_duration(value)
        except ValueError as exc:
            raise PydanticCustomError("duration", str(exc)) from None

    return BeforeValidator(check)


_SERIALIZE = PlainSerializer(format_duration, return_type=str)

# A positive duration as written in rules: `90s`, `15m`, `4h`, `2d`, `1w`, `1h30m`.
Duration = Annotated[
    timedelta,
    _validator(zero=False),
    _SERIALIZE,
    WithJsonSchema({"type": "string", "pattern": r"^(\d+[smhdw])+$", "examples": ["15m", "2d"]}),
]
# The same, where zero makes sense too (`0s`, `0`): a route's `group_wait`, a test event's `at`.
DurationOrZero = Annotated[timedelta, _validator(zero=True), _SERIALIZE]
