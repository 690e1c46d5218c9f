"""Alert messages: Jinja2 templates in a sandboxed environment, parsed at load time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Template, TemplateError, Undefined
from jinja2.nodes import Template as TemplateAst
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.rules.durations import humanize


def _ago(start: Any, end: Any = None) -> str:
    """`{{ first.time | ago(then.time) }}` -> `3 days`: the time between two events."""
    if not isinstance(start, datetime):
        return ""
    if end is None:
        return humanize(datetime.now(start.tzinfo) - start)
    if not isinstance(end, datetime):
        return ""
    return humanize(end - start)


def _duration(value: Any) -> str:
    """`{{ late_by | duration }}` -> `2 hours`."""
    return humanize(value) if isinstance(value, timedelta) else str(value)


def _when(value: Any) -> str:
    """`{{ first.time | when }}` -> `2026-05-01 09:30 UTC`."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if isinstance(value, datetime) else str(value)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=Undefined, autoescape=False)
    env.filters.update(ago=_ago, duration=_duration, when=_when)
    return env


ENVIRONMENT = _environment()


@dataclass(frozen=True)
class MessageTemplate:
    """A parsed message template; rendering never raises."""

    text: str
    compiled: Template = field(compare=False, repr=False)

    @classmethod
    def build(cls, text: str) -> MessageTemplate:
        """Compile a template that is known to parse."""
        return cls(text, ENVIRONMENT.from_string(text))

    @staticmethod
    def parse_error(text: str) -> tuple[int, str] | None:
        """None if the template parses, else (1-based line, message)."""
        try:
            ast: TemplateAst = ENVIRONMENT.parse(text)
        except TemplateError as exc:
            return getattr(exc, "lineno", 1) or 1, getattr(exc, "message", None) or str(exc)
        del ast
        return None

    def render(self, context: Mapping[str, Any], fallback: str) -> str:
        """The message for one finding; the fallback if the template fails on this data."""
        try:
            return " ".join(self.compiled.render(context).split())
        except TemplateError:
            return fallback
