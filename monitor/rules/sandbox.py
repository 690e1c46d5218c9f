"""The Jinja2 sandbox for alert messages, with bounds on the work and memory one render may use.

Jinja's `ImmutableSandboxedEnvironment` already refuses private attributes (`__class__`,
`mro`, `__globals__`, ...) and mutating methods. On top of it:

- every sandbox hook (attribute and item access, calls, `*`/`**`/`+`/`%`, filters) charges a
  per-render budget, filters by the size of their input; an exhausted budget stops the render;
- what a render builds is measured by its *weight*, the values it holds at every depth (a list
  repeated 8,000 times inside a list repeated 8,000 times weighs 64 million, though its length
  is 8,000): `*`, `+`, filter and call results and every value printed are refused over four
  times `max_chars`, before the value is built or turned into text;
- `range()` yields at most `max_range` numbers;
- operators and filters that could build a huge value from a small template (`'x' * 10**9`,
  `2 ** 10**9`, `center(10**9)`, `replace('', ...)`, `'%999999999s' % x`, `batch(10**9)`) are
  checked before they run;
- `namespace`, `cycler`, `joiner` and `lipsum` are not available, and width-padding string
  methods (`format`, `center`, `ljust`, ...) are not callable.

Structural checks (no nested loops, no macros or includes) happen at load time in
`monitor.rules.templates`; together they keep one render linear in its input.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterator, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

# str methods that pad to a caller-given width: one call could allocate gigabytes
BLOCKED_STR_METHODS = frozenset(
    {"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs", "replace"}
)
REMOVED_GLOBALS = ("namespace", "cycler", "joiner", "lipsum")
_WIDTH = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


@dataclass(frozen=True)
class TemplateLimits:
    """How much one message render may do (see the module docstring)."""

    max_chars: int = 2000
    max_range: int = 1000
    budget: int = 100_000


class TemplateLimitError(SecurityError):
    """A render went over one of its limits."""


@dataclass
class _Budget:
    limits: TemplateLimits
    left: int

    def charge(self, units: int) -> None:
        self.left -= units
        if self.left < 0:
            raise TemplateLimitError(
                f"the render used more than its budget of {self.limits.budget} operations "
                "(setting template_budget)"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("cxmon_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # rendering outside `bounded()`: use the defaults
        budget = _Budget(TemplateLimits(), TemplateLimits().budget)
        _BUDGET.set(budget)
    return budget


class bounded:
    """Context manager: renders inside it share one fresh budget."""

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.token: Any = None

    def __enter__(self) -> TemplateLimits:
        self.token = _BUDGET.set(_Budget(self.limits, self.limits.budget))
        return self.limits

    def __exit__(self, *exc: object) -> None:
        _BUDGET.reset(self.token)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, Sized) and not isinstance(value, Undefined) else 1


def weight(value: Any, limit: int) -> int:
    """Values held by `value` at every depth (a string counts its characters), counted until
    the count passes `limit`: shared lists count each time they appear, as printing them would,
    and the walk costs at most `limit` steps."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) or 1
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        else:
            total += 1
    return total


def _check_size(value: Any, what: str) -> Any:
    limit = _budget().limits.max_chars * 4
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        held = weight(value, limit)
        if held > limit:
            raise TemplateLimitError(f"{what} would hold more than {limit} values, limit {limit}")
    return value


def _refuse_if_larger(expected: int, what: str) -> None:
    limit = _budget().limits.max_chars * 4
    if expected > limit:
        raise TemplateLimitError(f"{what} would produce {expected} characters, limit {limit}")


def _bounded_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    limit = _budget().limits.max_range
    if len(numbers) > limit:
        raise TemplateLimitError(
            f"range() of {len(numbers)} numbers, limit {limit} (setting template_max_range)"
        )
    _budget().charge(len(numbers))
    return iter(numbers)


def _check_format(fmt: str, args: Any) -> None:
    """Refuse `%` formatting whose widths would allocate more than the output cap."""
    for width, precision in _WIDTH.findall(fmt):
        for number in (width, precision):
            if number == "*":
                raise TemplateLimitError("'*' widths are not allowed in messages")
            if number:
                _refuse_if_larger(int(number), "a %-format width")
    _refuse_if_larger(len(fmt) + sum(_size(a) for a in _as_tuple(args)), "%-formatting")


def _as_tuple(args: Any) -> tuple[Any, ...]:
    return args if isinstance(args, tuple) else (args,)


def _checked_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps `jinja_pass_arg`, so context/environment filters still work
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        payload = [a for a in args if not isinstance(a, Context | ImmutableSandboxedEnvironment)]
        budget.charge(1 + sum(_size(a) for a in payload[:1]))
        _precheck_filter(name, payload, kwargs)
        return _check_size(fn(*args, **kwargs), f"filter '{name}'")

    return run


def _precheck_filter(name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Arguments that ask a filter to build something large, refused before it runs."""
    value = args[0] if args else ""
    rest = args[1:]
    if (
        name in ("center", "batch", "slice", "truncate", "wordwrap")
        and rest
        and isinstance(rest[0], int)
    ):
        _refuse_if_larger(rest[0], f"filter '{name}'")
    if name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else int(width or 0)
        _refuse_if_larger(pad * (str(value).count("\n") + 1) + _size(value), "filter 'indent'")
    if name == "replace" and len(rest) >= 2:
        old, new = str(rest[0]), str(rest[1])
        hits = str(value).count(old) if old else len(str(value)) + 1
        _refuse_if_larger(_size(value) + hits * len(new), "filter 'replace'")
    if name == "format":
        _check_format(str(value), tuple(rest))


def _printable(value: Any) -> Any:
    """Every `{{ value }}` before it becomes text: a value too heavy to print is refused."""
    return _check_size(value, "a printed value")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, charging every hook to the current render's budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, filters: dict[str, Callable[..., Any]]) -> None:
        super().__init__(undefined=Undefined, autoescape=False, finalize=_printable)
        self.filters.update(filters)
        self.filters = {name: _checked_filter(name, fn) for name, fn in self.filters.items()}
        for name in REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["range"] = _bounded_range

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Also refuse the width-padding string methods."""
        if isinstance(obj, str) and attr in BLOCKED_STR_METHODS:
            return False
        return bool(super().is_safe_attribute(obj, attr, value))

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Attribute access, charged."""
        _budget().charge(1)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Item access, charged."""
        _budget().charge(1)
        return super().getitem(obj, argument)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls (macros, methods, `loop()`), charged by their arguments."""
        _budget().charge(1 + sum(_size(a) for a in args))
        return _check_size(super().call(__context, __obj, *args, **kwargs), "a call")

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:  # noqa: ARG002 - Jinja's signature
        """`*`, `**`, `+`, `%` with their results' sizes checked before they are built."""
        _budget().charge(1)
        limit = _budget().limits.max_chars * 4
        if operator_ == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _refuse_if_larger(weight(seq, limit) * max(times, 0), "'*'")
        if (
            operator_ == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
        ):
            _refuse_if_larger(abs(left).bit_length() * right // 8, "'**'")
        if operator_ == "%" and isinstance(left, str):
            _check_format(left, right)
        if operator_ == "+" and isinstance(left, str | list | tuple):
            _refuse_if_larger(weight(left, limit) + weight(right, limit), "'+'")
        return {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}[
            operator_
        ](left, right)
