"""A static upper bound on the work one CEL evaluation can do, and the functions rules may call.

The CEL library has no run-time cost limit, so cxmon bounds cost before a rule runs. CEL has no
loops, recursion or variables; the only constructs whose work grows with data are the
comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) and membership (`x in list`).
The estimate multiplies, along every nesting path, the size of each range: a list literal
counts its items; anything else (a list from the event) counts as the longest list an event can
carry. Everything else in an expression is linear in its text and in the event's size.
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


def estimate(text: str, unknown_size: int) -> Cost:
    """Upper bound on element visits of one evaluation (at least 1)."""
    tokens = [(m.lastgroup or "other", m.group(0)) for m in _TOKEN.finditer(text)]
    stack: list[_Frame] = [_Frame("", 1, False)]
    worst, deepest = 1, 0
    for index, (kind, token) in enumerate(tokens):
        current = stack[-1].multiplier
        if kind == "comp":
            size = _range_size(tokens, index, unknown_size)
            multiplier = current * size
            worst = max(worst, multiplier)
            depth = sum(1 for f in stack if f.comprehension) + 1
            deepest = max(deepest, depth)
            stack.append(_Frame(")", multiplier, True))
        elif kind == "open":
            stack.append(_Frame({"(": ")", "[": "]", "{": "}"}[token], current, False))
        elif kind == "close" and len(stack) > 1:
            stack.pop()
        elif kind == "ident" and token == "in":  # noqa: S105  (the CEL keyword)
            size = _following_size(tokens, index, unknown_size)
            worst = max(worst, current * size)
    return Cost(worst, deepest)


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
