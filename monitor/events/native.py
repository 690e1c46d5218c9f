"""Python forms of mapping fields, run per record instead of CEL where they give the same value
(`monitor.sources.shortcuts` finds them when a field is compiled): paths read directly (`Flat`
binds only what a CEL program reads, `Choice` picks one of two paths, `Native` runs the common
shapes of expression). Each gives `FAILED` where CEL might differ, and the caller then runs the
field's CEL program, so values and errors are CEL's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CEL_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, OverflowError, ZeroDivisionError)
FAILED = object()


@dataclass(frozen=True)
class Flat:
    """A field's CEL program over one variable per path it reads: `reads` holds, per variable,
    the path and what it stands for: the value (""), `has(path)` ("has") or `path != null`
    ("not_null"). A path missing from the record leaves its
    variable unbound; CEL fails only if it evaluates it (a guarded branch does not), and then
    the original expression runs on the whole record to name the error."""

    program: Any
    reads: tuple[tuple[str, tuple[str, ...], str], ...]

    def run(self, scope: Mapping[str, Any]) -> Any:
        """The value, or `FAILED` if CEL could not evaluate it this way."""
        bound: dict[str, Any] = {}
        for variable, steps, test in self.reads:
            found, read = lookup(scope, steps)
            if test == "has":
                bound[variable] = found
            elif test == "not_null":
                bound[variable] = found and read is not None
            elif found:
                bound[variable] = read
        try:
            return self.program.execute(bound)
        except CEL_ERRORS:
            return FAILED


@dataclass(frozen=True)
class Native:
    """A field run in Python, as a small tree (`monitor.sources.shortcuts.native` builds it):
    paths, literals, `+` of strings, `==`/`!=`, `&&`, `c ? a : b`, `in` and indexing of literal
    maps, map literals, `has`, `string` and `double(path) / n`. Gives `FAILED` wherever CEL
    might differ (a missing key, a type CEL would refuse), so the CEL program decides those."""

    kind: str
    steps: tuple[str, ...] = ()
    operand: Any = None
    parts: tuple[Native, ...] = ()

    run: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # One closure per node, built once: walking the tree by `kind` per record cost more
        # than the CEL it replaces.
        object.__setattr__(self, "run", _closure(self))


def _closure(node: Native) -> Callable[[Mapping[str, Any]], Any]:  # noqa: C901 - one flat branch per node kind
    """`node` as a function of the record's scope giving its value or `FAILED`."""
    kind, steps, operand = node.kind, node.steps, node.operand
    runs = [part.run for part in node.parts]
    if kind == "lit":
        return lambda _scope: operand
    if kind == "path":
        return lambda scope: _read(scope, steps)
    if kind == "concat":

        def concat(scope: Mapping[str, Any]) -> Any:
            texts = [run(scope) for run in runs]
            return "".join(texts) if all(type(t) is str for t in texts) else FAILED

        return concat
    if kind == "if":
        condition, then, otherwise = runs

        def choose(scope: Mapping[str, Any]) -> Any:
            picked = condition(scope)
            if picked is True:
                return then(scope)
            return otherwise(scope) if picked is False else FAILED

        return choose
    if kind == "and":

        def both(scope: Mapping[str, Any]) -> Any:
            values = [run(scope) for run in runs]
            if any(v is False for v in values):  # CEL: false && anything, even an error
                return False
            return True if all(v is True for v in values) else FAILED

        return both
    if kind in ("eq", "ne"):
        left, right = runs
        equal = kind == "eq"
        return lambda scope: _equal(left(scope), right(scope), equal)
    if kind == "in":
        (key,) = runs
        return lambda scope: _member(key(scope), operand)
    if kind == "index":
        (key,) = runs
        return lambda scope: _index(key(scope), operand)
    if kind == "map":

        def mapping(scope: Mapping[str, Any]) -> Any:
            values = [run(scope) for run in runs]
            if any(v is FAILED for v in values):
                return FAILED
            return dict(zip(operand, values, strict=True))

        return mapping
    if kind == "has":
        parent_steps, last = steps[:-1], steps[-1]

        def has(scope: Mapping[str, Any]) -> Any:
            parent = _read(scope, parent_steps)
            return last in parent if type(parent) is dict else FAILED

        return has
    if kind == "string":

        def string(scope: Mapping[str, Any]) -> Any:
            read = _read(scope, steps)
            return str(read) if type(read) in (str, int) else FAILED

        return string

    def scale(scope: Mapping[str, Any]) -> Any:  # "scale": double(path) / n
        read = _read(scope, steps)
        return float(read) / operand if type(read) in (int, float) else FAILED

    return scale


def _read(scope: Mapping[str, Any], steps: tuple[str, ...]) -> Any:
    node: Any = scope.get(steps[0], FAILED)
    for key in steps[1:]:
        if type(node) is not dict:
            return FAILED
        node = node.get(key, FAILED)
    return node


def _member(key: Any, keys: frozenset[str]) -> Any:
    return key in keys if type(key) is str else FAILED


def _index(key: Any, table: dict[str, Any]) -> Any:
    return table.get(key, FAILED) if type(key) is str else FAILED


def _equal(left: Any, right: Any, equal: bool) -> Any:
    """CEL's == (or !=) where it is plain: null against anything, or two values of one type."""
    if left is FAILED or right is FAILED:
        return FAILED
    if left is None or right is None:
        return (left is None and right is None) == equal
    if type(left) is not type(right) or type(left) not in (str, int, bool):
        return FAILED
    return (left == right) == equal


@dataclass(frozen=True)
class Choice:
    """A field that is `condition ? then : otherwise` with two plain paths (CDC's row from
    `before` or `after`): the chosen map is read from the parsed value, never converted."""

    condition: Native | Flat
    then: tuple[str, ...]
    otherwise: tuple[str, ...]


def lookup(scope: Mapping[str, Any], steps: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = scope.get(steps[0])
    for key in steps[1:]:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node
