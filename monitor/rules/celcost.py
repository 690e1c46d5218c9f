"""A static upper bound on the work one CEL evaluation can do, and the functions rules may call.

The CEL library has no run-time cost limit and holds the GIL while it evaluates, so nothing can
interrupt an evaluation: cxmon bounds cost before a rule runs. CEL has no loops, recursion or
variables; the only constructs whose work grows with data are the comprehensions (`all`,
`exists`, `exists_one`, `map`, `filter`) and membership (`x in list`).

The unit is one value visited or copied. `all`, `exists`, `exists_one` and `in` visit each item
of their range once, and the estimate multiplies, along every nesting path, the size of each
range: a list literal counts its items; anything else (a list from the event) counts as the
most items an array or object in an event may hold (`max_data_items`). `map` and `filter` also
copy the result they have built so far, deeply, at every step (measured: 200 lists of 1,000
items filtered take 8 s, not 200 steps), so they cost their range's size times the values
copied: the range's own values for `filter` and for a `map` that only reads its item, and a
whole event per item for a `map` that builds anything else. Everything else in an expression is
linear in its text and in the event's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cel

_TOKEN = re.compile(
    r"""(?P<str>[rRbB]*(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))"""
    r"|(?P<comp>\.\s*(?:all|exists_one|exists|map|filter)\s*\()"
    r"|(?P<ident>[A-Za-z_]\w*)"
    r"|(?P<open>[(\[{])|(?P<close>[)\]}])"
    r"|(?P<comma>,)"
    r"|(?P<other>[\s\S])"
)

# CEL functions the bundled interpreter provides; anything else cannot run, so it is refused
# when the rule is loaded rather than failing on every event.
ALLOWED_FUNCTIONS = frozenset(
    {
        "size",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "timestamp",
        "duration",
        "dyn",
        "type",
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
        "of",
        "none",
        "value",
        "hasValue",
        "orValue",
        "or",
    }
)


@dataclass(frozen=True)
class Cost:
    """The bound, and the nesting that produced it (for the error message)."""

    iterations: int
    depth: int


@dataclass
class _Frame:
    closer: str
    multiplier: int  # iterations of the enclosing comprehensions times this one's range
    comprehension: bool
    variables: frozenset[str] = frozenset()  # bound by this comprehension


def estimate(text: str, unknown_size: int, unknown_total: int | None = None) -> Cost:
    """Upper bound on values visited or copied by one evaluation (at least 1).

    `unknown_size` is the most items of a list read from an event, `unknown_total` the most
    values a whole event can hold (default: `unknown_size`).
    """
    total = unknown_total if unknown_total is not None else unknown_size
    tokens = [(m.lastgroup or "other", m.group(0)) for m in _TOKEN.finditer(text)]
    stack: list[_Frame] = [_Frame("", 1, False)]
    worst, deepest = 1, 0
    for index, (kind, token) in enumerate(tokens):
        current = stack[-1].multiplier
        if kind == "comp":
            size = _range_size(tokens, index, unknown_size)
            multiplier = current * size
            worst = max(worst, multiplier)
            if re.search(r"\b(?:map|filter)\b", token):
                copied = _range_values(tokens, index, total)
                if "map" in token and _map_builds(tokens, index):
                    copied = size * total
                worst = max(worst, multiplier * copied)
            depth = sum(1 for f in stack if f.comprehension) + 1
            deepest = max(deepest, depth)
            variable = next((t for k, t in tokens[index + 1 :] if k == "ident"), "")
            stack.append(_Frame(")", multiplier, True, frozenset({variable})))
        elif kind == "open":
            stack.append(_Frame({"(": ")", "[": "]", "{": "}"}[token], current, False))
        elif kind == "close" and len(stack) > 1:
            stack.pop()
        elif kind == "ident" and token == "in":  # noqa: S105  (the CEL keyword)
            size = _following_size(tokens, index, unknown_size)
            worst = max(worst, current * size)
        elif kind == "ident" and current > 1 and _reads_event(tokens, index, stack):
            # the library copies a bound event, deeply, each time the body reads it
            worst = max(worst, current * total)
    return Cost(worst, deepest)


def _reads_event(tokens: list[tuple[str, str]], index: int, stack: list[_Frame]) -> bool:
    """Whether the identifier at `index` names a bound event (not a member, a function, a
    keyword or a comprehension's own variable)."""
    name = tokens[index][1]
    if name in ("true", "false", "null", "in") or any(name in f.variables for f in stack):
        return False
    before = next((t for _, t in reversed(tokens[:index]) if not t.isspace()), "")
    after = next((t for _, t in tokens[index + 1 :] if not t.isspace()), "")
    return before != "." and after != "(" and not before.endswith("(")


def _range_size(tokens: list[tuple[str, str]], index: int, unknown: int) -> int:
    """Items in the range a comprehension at `index` iterates: a literal's count, else unknown."""
    j = index - 1
    while j >= 0 and tokens[j][1].isspace():
        j -= 1
    if j < 0 or tokens[j][1] != "]":
        return unknown
    depth, items, empty = 0, 1, True
    for k in range(j, -1, -1):
        kind, token = tokens[k]
        if kind == "close":
            depth += 1
        elif kind == "open":
            depth -= 1
            if depth == 0:
                # `x[0]` indexes something of unknown size; only a bare `[...]` is a literal
                before = [t for _, t in tokens[:k] if not t.isspace()]
                if before and (before[-1] in (")", "]") or re.fullmatch(r"\w+", before[-1])):
                    return unknown
                return 0 if empty else items
        elif depth == 1 and kind == "comma":
            items += 1
        elif depth >= 1 and not token.isspace():
            empty = False
    return unknown


def _range_values(tokens: list[tuple[str, str]], index: int, unknown: int) -> int:
    """Values (at any depth) in the range of the comprehension at `index`: a literal's scalars,
    else a whole event's."""
    j = index - 1
    while j >= 0 and tokens[j][1].isspace():
        j -= 1
    if j < 0 or tokens[j][1] != "]" or _range_size(tokens, index, -1) < 0:
        return unknown
    depth, values = 0, 1
    for k in range(j, -1, -1):
        kind = tokens[k][0]
        if kind == "close":
            depth += 1
        elif kind == "open":
            depth -= 1
            if depth == 0:
                return values
        elif kind == "comma":
            values += 1
    return unknown


def _reads_other_name(piece: str) -> bool:
    """Whether an identifier in a `map` body is a name other than a literal or a CEL function."""
    return piece not in ("true", "false", "null", "in", *ALLOWED_FUNCTIONS)


def _map_builds(pieces: list[tuple[str, str]], index: int) -> bool:
    """Whether the body of the `map` at `index` may produce more than a part of its item:
    it concatenates, builds a list or map, or reads anything but the item variable."""
    variable: str | None = None
    depth, in_body, previous = 1, False, "."
    for kind, piece in pieces[index + 1 :]:
        if piece.isspace():
            continue
        if kind == "open":
            depth += 1
            if in_body and piece in "[{":
                return True
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return False
        elif kind == "comma" and depth == 1:
            in_body = True
        elif kind == "comp" and in_body:
            return True
        elif kind == "ident" and variable is None:
            variable = piece
        elif (
            kind == "ident"
            and in_body
            and previous != "."
            and piece != variable
            and _reads_other_name(piece)
        ) or (in_body and piece == "+"):
            return True
        previous = piece
    return True


def _following_size(tokens: list[tuple[str, str]], index: int, unknown: int) -> int:
    """Items of the list after `in`: a literal's count, else unknown."""
    rest = [(kind, token) for kind, token in tokens[index + 1 :] if not token.isspace()]
    if not rest or rest[0][1] != "[":
        return unknown
    depth, items = 0, 1
    for kind, _token in rest:
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
            if depth == 0:
                return items
        elif depth == 1 and kind == "comma":
            items += 1
    return unknown


def unknown_functions(text: str) -> list[str]:
    """Functions the expression calls that CEL here does not provide (operators excepted)."""
    called = cel.compile(text).functions()
    return [
        name
        for name in called
        if name not in ALLOWED_FUNCTIONS and re.fullmatch(r"\w+", name)  # not an operator
    ]
