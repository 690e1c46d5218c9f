"""Alert messages: Jinja2 templates in a bounded sandbox, parsed and checked at load time."""

from __future__ import annotations

import difflib
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from jinja2 import Template, TemplateError, nodes
from jinja2.nodes import Template as TemplateAst

from monitor.config.durations import humanize
from monitor.rules.sandbox import (
    BLOCKED_STR_METHODS,
    REMOVED_GLOBALS,
    BoundedSandbox,
    TemplateLimits,
    bounded,
)

log = logging.getLogger("cxmon")
# Renders that fell back to the title, by rule id; the worker drains it into
# cxmon_message_render_failures_total{rule}.
render_failures: Counter[str] = Counter()
# Statements an alert message has no use for; each could hide unbounded work or reach outside.
FORBIDDEN_NODES: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
    nodes.Block: "blocks",
    nodes.FilterBlock: "filter blocks",
}


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


ENVIRONMENT = BoundedSandbox({"ago": _ago, "duration": _duration, "when": _when})


def unsafe_constructs(text: str) -> list[tuple[int, str]]:
    """(line, problem) for each construct a message may not use; the text must parse."""
    found: list[tuple[int, str]] = []
    _walk(ENVIRONMENT.parse(text), 0, found)
    return found


def _attribute_read(node: nodes.Node) -> object:
    """The attribute name a node reads (`x.a`, `x['a']`, `x | attr('a')`), or None."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value
    if isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
        first = node.args[0]
        return first.value if isinstance(first, nodes.Const) else None
    return None


def _walk(node: nodes.Node, loops: int, found: list[tuple[int, str]]) -> None:
    line = node.lineno or 1
    for kind, name in FORBIDDEN_NODES.items():
        if isinstance(node, kind):
            found.append((line, f"{name} are not allowed in a message"))
    if isinstance(node, nodes.For):
        if loops:
            found.append((line, "a loop inside a loop is not allowed in a message"))
        if node.recursive:
            found.append((line, "recursive loops are not allowed in a message"))
    attr = _attribute_read(node)
    if isinstance(attr, str) and (attr.startswith("_") or attr in ("mro", "func_globals")):
        found.append((line, f"'{attr}' is not accessible in a message"))
    if isinstance(attr, str) and attr in BLOCKED_STR_METHODS and isinstance(node, nodes.Getattr):
        found.append((line, f"the string method '{attr}' is not available in a message"))
    if isinstance(node, nodes.Name) and node.name in (*REMOVED_GLOBALS, "self"):
        found.append((line, f"'{node.name}' is not available in a message"))
    inner = loops + 1 if isinstance(node, nodes.For) else loops
    for child in node.iter_child_nodes():
        # a loop's own iterable is evaluated once, outside the loop body
        depth = loops if isinstance(node, nodes.For) and child is node.iter else inner
        _walk(child, depth, found)


@dataclass(frozen=True)
class TemplateProblem:
    """A name a template uses that does not exist where it renders (1-based line and column)."""

    what: str  # "filter", "test" or "name"
    name: str
    line: int
    col: int
    suggestion: str | None


def unknown_filters(text: str) -> list[TemplateProblem]:
    """Every filter and test the template uses that the sandbox does not provide.

    Jinja refuses these only when it compiles the template, and only the first; this walks the
    whole template so one run names them all. The text must parse.
    """
    found: list[TemplateProblem] = []
    lines = text.split("\n")
    for node in ENVIRONMENT.parse(text).find_all((nodes.Filter, nodes.Test)):
        known = ENVIRONMENT.filters if isinstance(node, nodes.Filter) else ENVIRONMENT.tests
        if node.name in known:
            continue
        what = "filter" if isinstance(node, nodes.Filter) else "test"
        marker = r"\|\s*" if what == "filter" else r"\bis\s+(?:not\s+)?"
        line = node.lineno or 1
        col = _column(lines, line, marker + re.escape(node.name) + r"\b", node.name)
        close = difflib.get_close_matches(node.name, sorted(known), n=1)
        found.append(TemplateProblem(what, node.name, line, col, close[0] if close else None))
    return found


def unknown_names(text: str, provided: frozenset[str]) -> list[TemplateProblem]:
    """Every variable the template reads that is neither provided nor set by the template itself
    (it would render as empty text). `provided` may hold `match*`-style prefixes ending in `*`.
    The text must parse."""
    ast = ENVIRONMENT.parse(text)
    # Jinja's own `meta.find_undeclared_variables` compiles the template, which stops at an
    # unknown filter; a name the template stores anywhere (a loop target, `set`) counts as set.
    stored = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    stored |= {m.name for m in ast.find_all(nodes.Macro)}
    read = {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}
    # the removed globals and `self` are TEMPLATE_UNSAFE (see `unsafe_constructs`), not unknown
    undeclared = read - stored - set(ENVIRONMENT.globals) - {"loop", "self", *REMOVED_GLOBALS}
    prefixes = tuple(p[:-1] for p in provided if p.endswith("*"))
    missing = {
        n for n in undeclared if n not in provided and not (prefixes and n.startswith(prefixes))
    }
    found: list[TemplateProblem] = []
    lines = text.split("\n")
    reported: set[str] = set()
    for node in ast.find_all(nodes.Name):
        if node.name not in missing or node.name in reported or node.ctx != "load":
            continue
        reported.add(node.name)
        line = node.lineno or 1
        col = _column(lines, line, r"(?<![\w.])" + re.escape(node.name) + r"\b", node.name)
        names = sorted(p for p in provided if not p.endswith("*"))
        close = difflib.get_close_matches(node.name, names, n=1)
        found.append(TemplateProblem("name", node.name, line, col, close[0] if close else None))
    return found


def _column(lines: list[str], line: int, pattern: str, name: str) -> int:
    """The 1-based column of `name` on a template line (1 when it cannot be found)."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    hit = re.search(pattern, text)
    if hit is None:
        return 1
    return hit.start() + hit.group(0).rfind(name) + 1


@dataclass(frozen=True)
class MessageTemplate:
    """A parsed message template; rendering never raises."""

    text: str
    compiled: Template = field(compare=False, repr=False)
    # Set once the rule is placed: names the rule and file:line:col in run-time errors.
    origin: str = field(default="a message template", compare=False)
    limits: TemplateLimits = field(default_factory=TemplateLimits, compare=False)
    rule_id: str = field(default="", compare=False)

    @cached_property
    def reads_status(self) -> bool:
        """Whether the template reads `status`: it then says itself what a resolution means."""
        return any(
            n.name == "status" and n.ctx == "load"
            for n in ENVIRONMENT.parse(self.text).find_all(nodes.Name)
        )

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
        """The message for one finding; the fallback if the template fails or goes over a
        limit (logged with the rule's name and place)."""
        cap = self.limits.max_chars
        try:
            with bounded(self.limits):
                chunks: list[str] = []
                size = 0
                for chunk in self.compiled.generate(context):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > cap * 4:  # whitespace is collapsed below; allow for it
                        break
            text = " ".join("".join(chunks).split())
        # Rendering runs author-written code on producer-written data: any failure of it (a type
        # error, deep recursion, a sandbox refusal, memory running out) must cost one message,
        # not the alert, so every Exception (MemoryError is one) falls back and is counted.
        except Exception as exc:
            render_failures[self.rule_id] += 1
            log.warning(
                "%s: message not rendered (%s); the title is used",
                self.origin,
                f"{type(exc).__name__}: {exc}" if isinstance(exc, MemoryError) else exc,
            )
            return fallback
        if len(text) > cap:
            log.warning(
                "%s: message longer than %d characters (setting template_max_chars); cut",
                self.origin,
                cap,
            )
            return text[: cap - 1] + "…"
        return text
