"""CEL expressions in rules: name rewriting (lists, macros, `event`), compilation and evaluation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cel

from monitor.errors import CxmonError

_TOKEN = re.compile(
    r"""(?P<str>[rRbB]*(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<ident>[A-Za-z_]\w*)"
    r"|(?P<other>[\s\S])"
)
_BOUND = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_CEL_ERROR_AT = re.compile(r"<input>:(\d+):(\d+):\s*(.*?)(?:\n|$)")
KEYWORDS = frozenset({"true", "false", "null", "in"})


class EvaluationError(CxmonError):
    """A CEL expression failed on a particular event (missing field, wrong type)."""


@dataclass(frozen=True)
class CelSyntaxError:
    """Where (1-based, inside the expression) and why an expression does not parse."""

    line: int
    col: int
    message: str


def free_names(expression: str) -> list[tuple[str, int]]:
    """Identifiers that name variables (not members, functions or comprehension variables).

    Returns each name with its offset in the expression.
    """
    bound = set(_BOUND.findall(expression))
    names: list[tuple[str, int]] = []
    previous = ""
    for match in _TOKEN.finditer(expression):
        token = match.group(0)
        if match.lastgroup == "ident":
            follows = expression[match.end() :].lstrip()[:1]
            if previous != "." and follows != "(" and token not in KEYWORDS | bound:
                names.append((token, match.start()))
        if not token.isspace():
            previous = token if match.lastgroup == "other" else "x"
    return names


def rewrite(expression: str, replacements: Mapping[str, str]) -> str:
    """Replace free variable names by CEL text (lists -> literals, macros -> `(body)`)."""
    out: list[str] = []
    last = 0
    for name, offset in free_names(expression):
        if name in replacements:
            out.append(expression[last:offset])
            out.append(replacements[name])
            last = offset + len(name)
    out.append(expression[last:])
    return "".join(out)


def cel_literal(values: list[Any]) -> str:
    """A list from a rule file as a CEL list literal."""
    return json.dumps(values)


def parse_error(expression: str) -> CelSyntaxError | None:
    """None if the expression parses, else the first syntax error with its position."""
    try:
        cel.compile(expression)
    except ValueError as exc:
        text = str(exc)
        found = _CEL_ERROR_AT.search(text)
        if found:
            return CelSyntaxError(int(found.group(1)), int(found.group(2)), found.group(3))
        return CelSyntaxError(1, 1, text.splitlines()[0])
    return None


_ACCESS = re.compile(r"\s*\.\s*([A-Za-z_]\w*)(?:\s*\.\s*([A-Za-z_]\w*))?")
EVENT_FIELDS = ("id", "source", "department", "type", "time", "subject", "data")


@dataclass(frozen=True)
class Needs:
    """Which parts of an event a condition reads: CEL converts every key it is given (~2 µs
    each), so handing it only these keeps evaluation cheap. None means "all of it"."""

    fields: frozenset[str] | None
    data: frozenset[str] | None

    def view(self, event: Any) -> dict[str, Any]:
        """The event as this condition needs to see it."""
        if self.fields is None:
            return dict(event.to_cel())
        out: dict[str, Any] = {}
        for name in self.fields:
            if name == "data":
                data = event.data
                keys = self.data
                out["data"] = data if keys is None else {k: data[k] for k in keys if k in data}
            elif name == "department":
                out[name] = event.department
            else:
                out[name] = getattr(event, name)
        return out


def needs_of(text: str) -> dict[str, Needs]:
    """Per free variable, the fields (and `data` keys) the expression reads."""
    fields: dict[str, set[str] | None] = {}
    data: dict[str, set[str] | None] = {}
    for name, offset in free_names(text):
        found = _ACCESS.match(text, offset + len(name))
        have = fields.setdefault(name, set())
        data.setdefault(name, set())
        if found is None or found.group(1) not in EVENT_FIELDS:
            fields[name] = None  # used whole (or unknown field): give it everything
            continue
        if have is not None:
            have.add(found.group(1))
        if found.group(1) == "data":
            keys = data[name]
            if found.group(2) is None:
                data[name] = None
            elif keys is not None:
                keys.add(found.group(2))
    return {
        name: Needs(
            None if fields[name] is None else frozenset(fields[name] or ()),
            None if data[name] is None else frozenset(data[name] or ()),
        )
        for name in fields
    }


@dataclass(frozen=True)
class Condition:
    """A compiled CEL condition; true only when the expression yields boolean true."""

    text: str
    program: Any
    needs: dict[str, Needs] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, text: str) -> Condition:
        """Compile text that is known to parse."""
        return cls(text, cel.compile(text), needs_of(text))

    def holds_for(self, events: Mapping[str, Any]) -> bool:
        """Evaluate with events (Event or EventRef) bound by name, converting only what is read."""
        return self.value_for(events) is True

    def value_for(self, events: Mapping[str, Any]) -> Any:
        """The expression's value with events bound by name, converting only what is read."""
        views = {
            name: needs.view(events[name]) for name, needs in self.needs.items() if name in events
        }
        return self.value(views)

    def holds(self, bindings: Mapping[str, Any]) -> bool:
        """Evaluate against the bound events; raise EvaluationError if it cannot be evaluated."""
        return self.value(bindings) is True

    def value(self, bindings: Mapping[str, Any]) -> Any:
        """The expression's value for the bound events."""
        try:
            return self.program.execute(dict(bindings))
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise EvaluationError(f"{self.text!r}: {exc}") from None
