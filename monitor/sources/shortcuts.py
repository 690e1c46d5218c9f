"""Cheaper forms of a mapping field with the same value, found when the field is compiled.

CEL converts every value it is given (several microseconds per map or string), so per record
the fields avoid CEL where they can: a plain path is read in Python; a few common shapes
(`value.event != 'deleted'`, `'ticket.' + value.event`, `string(value.id)`, a map literal
indexed or tested with `in`) run in Python (`Native`); a choice between two paths picks one
(`Choice`); anything else runs in CEL over one variable per path it reads (`Flat`). Each falls
back to the whole CEL program when it cannot give the value, so errors read the same.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import Any

import cel

from monitor.events.mapping import SCOPE, CompiledField
from monitor.events.native import Choice, Flat, Native
from monitor.rules.expressions import free_names

PLAIN_PATH = re.compile(r"\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*")


def shortcut(field: CompiledField, expanded: str) -> CompiledField:
    """`field` with the cheapest equivalent forms of its (macro-expanded) expression."""
    expanded = distribute(expanded)
    plain = PLAIN_PATH.fullmatch(expanded)
    steps = _steps(plain.group(1)) if plain else None
    if steps and steps[0] in SCOPE:
        return dataclasses.replace(field, path=steps)
    return dataclasses.replace(
        field, flat=flatten(expanded), choice=_choice(expanded), native=native(expanded)
    )


def _steps(text: str) -> tuple[str, ...]:
    return tuple(step.strip() for step in text.split("."))


_STRING = re.compile(r"'([^'\\\n]*)'|\"([^\"\\\n]*)\"")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_CALL = re.compile(r"(has|string|double)\s*\(\s*([A-Za-z_][\w.\s]*?)\s*\)")
_SCALE = re.compile(r"double\s*\(\s*([A-Za-z_][\w.\s]*?)\s*\)\s*/\s*(\d+(?:\.\d+)?)")
_CONSTANTS = {"true": True, "false": False, "null": None}


def native(text: str) -> Native | None:
    """The Python form of an expression made of paths, literals, `+` of strings, `==`/`!=`,
    `&&`, `c ? a : b`, `in` and indexing of literal maps, map literals, `has(path)`,
    `string(path)` and `double(path) / number`; None for anything else."""
    t = _unwrap(text.strip())
    if not t or _split(t, "||")[1:]:
        return None
    question = _split(t, "?")
    if len(question) == 2:
        branches = _split(question[1], ":")
        if len(branches) != 2:
            return None
        return _node("if", _native_all([question[0], *branches]))
    for op, kind in (("&&", "and"), ("==", "eq"), ("!=", "ne"), (" in ", "in"), ("+", "concat")):
        parts = _split(t, op)
        if len(parts) == 1:
            continue
        if kind == "in":
            keys = _literal(_unwrap(parts[1].strip())) if len(parts) == 2 else None
            subject = native(parts[0])
            if subject is None or not isinstance(keys, dict | list):
                return None
            return Native(
                "in", operand=frozenset(k for k in keys if isinstance(k, str)), parts=(subject,)
            )
        if kind in ("eq", "ne") and len(parts) != 2:
            return None
        return _node(kind, _native_all(parts))
    return _atom(t)


def _atom(t: str) -> Native | None:
    if t in _CONSTANTS:
        return Native("lit", operand=_CONSTANTS[t])
    if _STRING.fullmatch(t) or _NUMBER.fullmatch(t):
        return Native("lit", operand=ast.literal_eval(t))
    if _is_path(t):
        return Native("path", _steps(t))
    found = _CALL.fullmatch(t)
    if found and _is_path(found[2]) and (found[1] == "string" or "." in found[2]):
        return Native(found[1], _steps(found[2]))
    found = _SCALE.fullmatch(t)
    if found and _is_path(found[1]):
        return Native("scale", _steps(found[1]), float(found[2]))
    if t.startswith("{") and t.endswith("}") and _enclosed(t, "{", "}"):
        return _map(t[1:-1])
    if t.endswith("]") and "[" in t:  # {...}[x]: a lookup in a literal map
        at = t.rindex("[")
        table = _literal(_unwrap(t[:at].strip()))
        key = native(t[at + 1 : -1])
        if isinstance(table, dict) and key is not None:
            return Native("index", operand=table, parts=(key,))
    return None


def _map(body: str) -> Native | None:
    keys, values = [], []
    for entry in _split(body, ","):
        if not entry.strip():
            continue
        pair = _split(entry, ":")
        key = _literal(pair[0].strip()) if len(pair) == 2 else None
        value = native(pair[1]) if len(pair) == 2 else None
        if not isinstance(key, str) or value is None:
            return None
        keys.append(key)
        values.append(value)
    return Native("map", operand=tuple(keys), parts=tuple(values))


def _node(kind: str, parts: list[Native] | None) -> Native | None:
    return None if parts is None else Native(kind, parts=tuple(parts))


def _native_all(texts: list[str]) -> list[Native] | None:
    found = [native(t) for t in texts]
    return None if any(f is None for f in found) else [f for f in found if f is not None]


def _split(text: str, op: str) -> list[str]:
    """`text` split at `op` outside quotes and brackets (`?` splits once, at the first)."""
    parts, depth, quote, start, index = [], 0, "", 0, 0
    while index < len(text):
        char = text[index]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(op, index):
            parts.append(text[start:index])
            start = index = index + len(op)
            if op in ("?", ":"):  # a conditional: the rest is one part (nested ones inside)
                break
            continue
        index += 1
    parts.append(text[start:])
    return parts


def _unwrap(text: str) -> str:
    while text.startswith("(") and _enclosed(text, "(", ")"):
        text = text[1:-1].strip()
    return text


def _enclosed(text: str, opening: str, closing: str) -> bool:
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return index == len(text) - 1
    return False


def _is_path(text: str) -> bool:
    return PLAIN_PATH.fullmatch(text) is not None and _steps(text)[0] in SCOPE


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


_PATH = r"[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*"
# `(c ? p1 : p2).x.y`, with p1 and p2 plain paths: CDC's "the row from before or after".
_CHOICE_MEMBER = re.compile(
    rf"\(\s*([^()?:]+?)\s*\?\s*({_PATH})\s*:\s*({_PATH})\s*\)"
    r"((?:\s*\.\s*[A-Za-z_]\w*)+)(?![\w(])(?!\s*\()"
)
_CHOICE = re.compile(rf"\s*\(?\s*([^()?:]+?)\s*\?\s*({_PATH})\s*:\s*({_PATH})\s*\)?\s*")


def distribute(text: str) -> str:
    """`(c ? a : b).x` as `(c ? a.x : b.x)` (the same value): the paths then read only `x`, so
    the two maps need not be converted to CEL."""
    return _CHOICE_MEMBER.sub(lambda m: f"({m[1]} ? {m[2]}{m[4]} : {m[3]}{m[4]})", text)


def _choice(text: str) -> Choice | None:
    """A field that is `c ? path : path`: the condition in CEL, the chosen path read in Python."""
    found = _CHOICE.fullmatch(text)
    if found is None:
        return None
    paths = [_steps(p) for p in (found[2], found[3])]
    condition: Native | Flat | None = native(found[1]) or flatten(found[1])
    if condition is None or any(p[0] not in SCOPE for p in paths):
        return None
    return Choice(condition, paths[0], paths[1])


_STEPS = re.compile(r"(?:\s*\.\s*[A-Za-z_]\w*)*")
_HAS_BEFORE = re.compile(r"(?<![\w.])has\s*\(\s*$")
_CLOSE = re.compile(r"\s*\)")
_NULL_TEST = re.compile(r"\s*(!=|==)\s*null\b")


def flatten(text: str) -> Flat | None:
    """`text` with every path from a scope variable replaced by a variable (None when it does
    not compile that way). A path stops before a method call: `value.name.startsWith('x')`
    reads `value.name`."""
    out: list[str] = []
    last = 0
    variables: dict[tuple[tuple[str, ...], str], str] = {}
    for name, offset in free_names(text):
        if name not in SCOPE:
            return None
        steps_match = _STEPS.match(text, offset + len(name))
        end = steps_match.end() if steps_match else offset + len(name)
        steps = [name, *(s.strip() for s in text[offset + len(name) : end].split(".")[1:])]
        while len(steps) > 1 and text[end:].lstrip().startswith("("):  # a method, not a key
            end = text.rindex(".", offset, end)
            steps.pop()
        start, test = offset, ""
        has = _HAS_BEFORE.search(text, 0, offset)
        close = _CLOSE.match(text, end)
        null = _NULL_TEST.match(text, end)
        if has is not None and close is not None and len(steps) > 1:
            start, end, test = has.start(), close.end(), "has"
        elif null is not None:  # `value != null` need not convert the whole value
            end, test = null.end(), "not_null"
            if null.group(1) == "==":
                out.append(text[last:start] + "!")
                last = start
        key = (tuple(steps), test)
        variable = variables.setdefault(key, f"_cx{len(variables)}")
        out.append(text[last:start])
        out.append(variable)
        last = end
    out.append(text[last:])
    try:
        program = cel.compile("".join(out))
    except ValueError:
        return None
    return Flat(program, tuple((v, steps, test) for (steps, test), v in variables.items()))
