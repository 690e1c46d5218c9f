"""Map a path inside a parsed YAML document (`("rules", 0, "then", "where")`) to `file:line:col`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from monitor.errors import ConfigIssue, IssueCode, SourceLocation

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Locator:
    """Answers "where in the file is this?" for one YAML document."""

    file: str
    root: Any
    lines: Sequence[str]

    def resolve(self, path: Sequence[Any]) -> tuple[Path, Any]:
        """The longest prefix of `path` that exists in the document, and the node there.

        Elements that are not document keys (pydantic's union tags) are skipped.
        """
        node = self.root
        found: list[str | int] = []
        for element in path:
            if isinstance(node, dict) and isinstance(element, str) and element in node:  # noqa: SIM114 - each branch narrows its own types for mypy
                node = node[element]
                found.append(element)
            elif isinstance(node, list) and isinstance(element, int) and element < len(node):
                node = node[element]
                found.append(element)
        return tuple(found), node

    def node_at(self, path: Path) -> Any:
        """The node at an existing path."""
        return self.resolve(path)[1]

    def value(self, path: Sequence[Any]) -> SourceLocation:
        """Where the value at `path` starts (or the nearest existing ancestor)."""
        found, _ = self.resolve(path)
        return self._position(found, key=False)

    def key(self, path: Sequence[Any]) -> SourceLocation:
        """Where the key of the mapping entry at `path` is written."""
        found, _ = self.resolve(path)
        return self._position(found, key=True)

    def _position(self, path: Path, *, key: bool) -> SourceLocation:
        if not path:
            return SourceLocation(self.file, 1, 1)
        parent = self.node_at(path[:-1])
        last = path[-1]
        line, col = 0, 0
        if isinstance(parent, CommentedMap) and isinstance(last, str):
            line, col = parent.lc.key(last) if key else parent.lc.value(last)
        elif isinstance(parent, CommentedSeq) and isinstance(last, int):
            line, col = parent.lc.item(last)
        return SourceLocation(self.file, line + 1, col + 1)

    def inside_scalar(self, path: Path, line: int, col: int) -> SourceLocation:
        """The file position of (line, col), 1-based, inside the string scalar at `path`."""
        start = self.value(path)
        scalar = self.node_at(path)
        if isinstance(scalar, LiteralScalarString | FoldedScalarString):
            content = str(scalar).rstrip("\n").split("\n")
            if line > len(content):  # "unexpected end": point just after the last character
                line, col = len(content), len(content[-1]) + 1
            file_line = start.line + line
            text = self.lines[file_line - 1] if file_line - 1 < len(self.lines) else ""
            indent = len(text) - len(text.lstrip(" "))
            return SourceLocation(self.file, file_line, indent + col)
        quoted = isinstance(scalar, DoubleQuotedScalarString | SingleQuotedScalarString)
        if line == 1:
            return SourceLocation(self.file, start.line, start.col + col - 1 + int(quoted))
        return SourceLocation(self.file, start.line + line - 1, col)


def to_plain(node: Any) -> Any:
    """ruamel's round-trip containers and scalar strings, as plain Python data."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


YAML_HINT = "check indentation and quote values that contain ': ' or start with '{'"
# Aliases (`*name`) repeat what an anchor (`&name`) holds; nested ones multiply, so a 600-byte
# "billion laughs" file would expand to 10^9 values. What aliases may add is bounded before
# anything is built: a rule, mapping, test or alerting file never needs more than a few.
MAX_ALIASES = 1000
MAX_ALIAS_VALUES = 10_000


def alias_issue(name: str, text: str) -> ConfigIssue | None:
    """An issue if the document's aliases would expand to more than `MAX_ALIAS_VALUES` values
    beyond those written, or it uses more than `MAX_ALIASES` aliases; read from the parser's
    events, which never expand anything (None also when the text does not parse: the loader
    reports that)."""
    anchored: dict[str, int] = {}  # anchor -> values it expands to
    open_: list[tuple[str | None, int]] = []  # collections being read: (anchor, values so far)
    aliases, added = 0, 0
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, CollectionStartEvent):
                open_.append((event.anchor, 1))
                continue
            if isinstance(event, AliasEvent):
                aliases += 1
                values = anchored.get(event.anchor, 1)
                added += values
                why = (
                    f"{aliases} aliases, limit {MAX_ALIASES}"
                    if aliases > MAX_ALIASES
                    else f"aliases add {added:,} values, limit {MAX_ALIAS_VALUES:,}"
                )
                if aliases > MAX_ALIASES or added > MAX_ALIAS_VALUES:
                    mark = event.start_mark
                    return ConfigIssue(
                        IssueCode.YAML_ALIASES,
                        f"the file's aliases would expand too far: {why}",
                        SourceLocation(name, mark.line + 1, mark.column + 1),
                        hint="write the values out, or use fewer nested aliases",
                    )
            elif isinstance(event, CollectionEndEvent):
                anchor, values = open_.pop()
                if anchor:
                    anchored[anchor] = values
            elif isinstance(event, ScalarEvent):
                values = 1
                if event.anchor:
                    anchored[event.anchor] = 1
            else:
                continue
            if open_ and isinstance(event, NodeEvent | CollectionEndEvent):
                open_[-1] = (open_[-1][0], open_[-1][1] + values)
    except YAMLError:
        return None
    return None


def parse_yaml(name: str, text: str) -> tuple[Any, Locator | None, ConfigIssue | None]:
    """Parse YAML keeping positions: (root, its locator, None) or (None, None, the syntax issue).

    A document whose aliases would expand too far is refused before it is built."""
    too_far = alias_issue(name, text)
    if too_far is not None:
        return None, None, too_far
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (
            SourceLocation(name, mark.line + 1, mark.column + 1) if mark else SourceLocation(name)
        )
        problem = exc.problem or exc.context or "invalid YAML"
        return None, None, ConfigIssue(IssueCode.YAML_SYNTAX, problem, where, hint=YAML_HINT)
    except YAMLError as exc:
        return None, None, ConfigIssue(IssueCode.YAML_SYNTAX, str(exc), SourceLocation(name, 1, 1))
    return root, Locator(name, root, text.splitlines()), None
