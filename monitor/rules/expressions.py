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


_HAS_BEFORE = re.compile(r"(?<![\w.])has\s*\(\s*$")
_CLOSE = re.compile(r"\s*\)")


@dataclass(frozen=True)
class Flat:
    """A condition rewritten to read each field it uses as one top-level variable.

    CEL converts every nested map it is given (~1.5 µs each), so `then.data.amount > 0` runs
    about four times faster as `_cx0 > 0` with `_cx0` bound to the amount. `reads` lists, per
    variable, the binding name, the event field and, for `data`, the key.
    """

    program: Any
    reads: tuple[tuple[str, str, str, str | None], ...]
    # Results by bound values: CEL is pure, and one execution costs ~5-12 us whatever the
    # expression, while many events repeat the same values (a fee code, a priority).
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)


def flatten(text: str, needs: Mapping[str, Needs]) -> Flat | None:
    """The flat form of `text`, or None where it cannot be equivalent (whole events, whole
    `data`, indexing, or a method called on a data map). `has(e.data.k)` becomes a variable
    bound to whether `k` is in `data` (field "has")."""
    out: list[str] = []
    last = 0
    names: dict[tuple[str, str, str | None], str] = {}
    for name, offset in free_names(text):
        if name not in needs:
            return None
        found = _ACCESS.match(text, offset + len(name))
        if found is None or found.group(1) not in EVENT_FIELDS:
            return None
        field_name = found.group(1)
        key = found.group(2) if field_name == "data" else None
        if field_name == "data" and key is None:
            return None
        end = found.end(2) if key is not None else found.end(1)
        start = offset
        has = _HAS_BEFORE.search(text, 0, offset)
        if has is not None:
            close = _CLOSE.match(text, end)
            if key is None or close is None:
                return None
            field_name, start, end = "has", has.start(), close.end()
        if text[end:].lstrip().startswith(("(", "[")):
            return None
        variable = names.setdefault((name, field_name, key), f"_cx{len(names)}")
        out.append(text[last:start])
        out.append(variable)
        last = end
    out.append(text[last:])
    try:
        program = cel.compile("".join(out))
    except ValueError:
        return None
    reads = tuple((v, name, f, k) for (name, f, k), v in names.items())
    return Flat(program, reads)


_MISSING = object()
_MEMO_SIZE = 4096  # results remembered per condition
# Values (and results) remembered by value: immutable, and equal only when CEL sees them alike
# once their type is part of the key. Floats only when not zero (0.0 == -0.0); datetimes not
# at all (equal instants in other zones are not alike to `getHours`); lists and maps not at all.
_MEMO_VALUES = frozenset({str, int, bool, type(None)})
_MEMO_RESULTS = frozenset({str, int, bool, float, type(None)})


_MEMO_CHARS = 128  # longer strings are not remembered: 4096 of 256 KB each would hold 1 GB


def _memo_key(bound: dict[str, Any]) -> tuple[Any, ...] | None:
    """The memo key of bound values (names, values and their types), or None: not memoised."""
    for value in bound.values():
        kind = type(value)
        if kind not in _MEMO_VALUES and (kind is not float or value == 0.0):
            return None
        if kind is str and len(value) > _MEMO_CHARS:
            return None
    return (*bound.items(), *map(type, bound.values()))


@dataclass(frozen=True)
class Condition:
    """A compiled CEL condition; true only when the expression yields boolean true."""

    text: str
    program: Any
    needs: dict[str, Needs] = field(default_factory=dict, compare=False)
    flat: Flat | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, text: str) -> Condition:
        """Compile text that is known to parse."""
        needs = needs_of(text)
        return cls(text, cel.compile(text), needs, flatten(text, needs))

    def holds_for(self, events: Mapping[str, Any]) -> bool:
        """Evaluate with events (Event or EventRef) bound by name, converting only what is read."""
        return self.value_for(events) is True

    def value_for(self, events: Mapping[str, Any]) -> Any:
        """The expression's value with events bound by name, converting only what is read."""
        if self.flat is not None:
            value = _flat_value(self.flat, events)
            if value is not _MISSING:
                return value
            # an error: evaluate the original below, so the error names the original field
        views = {
            name: needs.view(events[name]) for name, needs in self.needs.items() if name in events
        }
        return self.value(views)

    def value(self, bindings: Mapping[str, Any]) -> Any:
        """The expression's value for the bound events."""
        try:
            return self.program.execute(dict(bindings))
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError) as exc:
            raise EvaluationError(f"{self.text!r}: {exc}") from None


def _flat_value(flat: Flat, events: Mapping[str, Any]) -> Any:
    """The flat form's value for the events (`_MISSING` when it fails), remembered by the
    values it read where they can be."""
    bound: dict[str, Any] = {}
    for variable, name, field_name, key in flat.reads:
        event = events.get(name)
        if event is None:
            continue
        if field_name == "has":
            bound[variable] = key in event.data
        elif key is not None:
            data = event.data
            if key in data:
                bound[variable] = data[key]
        elif field_name == "department":
            bound[variable] = event.department
        else:
            bound[variable] = getattr(event, field_name)
    memo = flat.memo
    memo_key = _memo_key(bound)
    if memo_key is not None:
        known = memo.get(memo_key, _MISSING)
        if known is not _MISSING:
            return known
    try:
        value = flat.program.execute(bound)
    except (KeyError, TypeError, ValueError, RuntimeError, OverflowError):
        return _MISSING
    if memo_key is not None and type(value) in _MEMO_RESULTS:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[memo_key] = value
    return value
