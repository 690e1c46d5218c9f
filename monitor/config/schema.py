"""pydantic's validation errors -> positioned `ConfigIssue`s, every one of them, for any spec model."""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from monitor.config.locate import Locator
from monitor.errors import ConfigIssue, IssueCode

DocPath = tuple[str | int, ...]
DURATION_HINT = "write a number and a unit: 90s, 15m, 4h, 2d, 1w"


def schema_issues(
    exc: ValidationError,
    model: type[BaseModel],
    locator: Locator,
    base: DocPath = (),
    rule_id: str | None = None,
) -> list[ConfigIssue]:
    """Every problem pydantic found, positioned; `base` is where the validated data sits.

    One issue per place in the file, except that each missing field is its own issue; where a
    union reports several branches, the duration's message wins (it says what to write). A
    missing field that an unknown key next to it misspells (`att:` for `at:`) is one mistake:
    only the unknown key is reported.
    """
    issues: dict[tuple[DocPath, str], ConfigIssue] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        found, node = locator.resolve((*base, *loc))
        kind = error["type"]
        if kind == "duration" and isinstance(node, dict):
            continue  # the mapping form of a union (business time) reports its own errors
        slot = (found, str(loc[-1]) if kind == "missing" and loc else "")
        if slot in issues and kind != "duration":
            continue
        issues[slot] = _issue(error, loc, found, len(base), locator, rule_id, model)
    typos = {
        (found[:-1], issue.hint)
        for (found, _), issue in issues.items()
        if issue.code == IssueCode.UNKNOWN_FIELD
    }
    return [
        issue
        for (found, name), issue in issues.items()
        if issue.code != IssueCode.MISSING_FIELD or (found, f"did you mean '{name}'?") not in typos
    ]


def _issue(
    error: Any,
    loc: tuple[Any, ...],
    found: DocPath,
    depth: int,
    locator: Locator,
    rule_id: str | None,
    model: type[BaseModel],
) -> ConfigIssue:
    kind = error["type"]
    name = str(loc[-1]) if loc else "file"
    if kind == "extra_forbidden":
        allowed = fields_at(model, loc[:-1])
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(allowed)}"
        return ConfigIssue(
            IssueCode.UNKNOWN_FIELD, f"unknown field '{name}'", locator.key(found), rule_id, hint
        )
    if kind == "missing":
        return ConfigIssue(
            IssueCode.MISSING_FIELD,
            f"missing required field '{name}'",
            locator.value(found),
            rule_id,
            f"add `{name}:`",
        )
    if kind == "duration":
        return ConfigIssue(
            IssueCode.RULE_DURATION, error["msg"], locator.value(found), rule_id, DURATION_HINT
        )
    where = ".".join(str(p) for p in found[depth:] if isinstance(p, str)) or name
    return ConfigIssue(
        IssueCode.WRONG_TYPE, f"{where}: {error['msg'].lower()}", locator.value(found), rule_id
    )


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """The field names (as written in files, aliases included) valid at `loc` inside `model`.

    `loc` is pydantic's error location: field names, list indexes, mapping keys and union
    branch tags; the walk follows the field types through them.
    """
    current: list[Any] = [model]
    for element in loc:
        following: list[Any] = []
        for kind in _alternatives(current):
            following.extend(_step(kind, element))
        current = following or current
    models = [k for k in _alternatives(current) if _is_model(k)]
    return sorted({f.alias or name for m in models for name, f in m.model_fields.items()})


def _step(kind: Any, element: Any) -> list[Any]:
    if _is_model(kind):
        if kind.__name__ == element:
            return [kind]  # a union's branch tag
        for name, info in kind.model_fields.items():
            if element in (name, info.alias):
                return [info.annotation]
        return []
    origin = get_origin(kind)
    if origin in (list, tuple, set, frozenset) and isinstance(element, int):
        return list(get_args(kind)[:1])
    if origin is dict:
        return list(get_args(kind)[1:2])
    return []


def _alternatives(kinds: list[Any]) -> list[Any]:
    """The types a value may have: unions and `Annotated` unwrapped."""
    out: list[Any] = []
    for kind in kinds:
        origin = get_origin(kind)
        if origin is Annotated:
            out.extend(_alternatives([get_args(kind)[0]]))
        elif origin in (Union, types.UnionType):
            out.extend(_alternatives(list(get_args(kind))))
        else:
            out.append(kind)
    return out


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)
