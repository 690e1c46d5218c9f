"""Read one YAML config file into its pydantic spec, collecting every issue with its position.

`load(path, Model)` is the whole path for a file that is one spec (alerting, rule tests,
source mappings); `read` and `validate` are its two halves, for a format that validates parts
of a file separately (rule files check each rule on its own, so one bad rule does not hide
the others). Nothing here raises for a file's content; reading it may raise OSError.

A spec model describes its file with two class variables, used in messages:
`FILE_KIND` ("a rule file") and `FILE_SHAPE` ("`version: 1` and `rules:`"). A model with a
`version` field gets the version checked before anything else, as that decides what the rest
of the file means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from monitor.config.locate import Locator, parse_yaml, to_plain
from monitor.config.schema import DocPath, schema_issues
from monitor.errors import ConfigIssue, IssueCode, SourceLocation

M = TypeVar("M", bound=BaseModel)


@dataclass
class Loaded(Generic[M]):
    """A file's spec (None when it has errors), every issue, and where things are in it."""

    file: str
    spec: M | None
    issues: list[ConfigIssue] = field(default_factory=list)
    locator: Locator | None = None

    @property
    def errors(self) -> list[ConfigIssue]:
        """The issues that make the file unusable (the rest are warnings)."""
        return [i for i in self.issues if i.severity == "error"]


def load(path: Path, model: type[M]) -> Loaded[M]:
    """Parse `path`, check its shape and version, and validate it as `model`."""
    name = str(path)
    root, locator, issues = read(path, model)
    if locator is None:
        return Loaded(name, None, issues)
    spec, found = validate(to_plain(root), model, locator)
    return Loaded(name, spec, found, locator)


def read(path: Path, model: type[BaseModel]) -> tuple[Any, Locator | None, list[ConfigIssue]]:
    """The parsed document (a mapping) and its locator, or None and the reason it is unusable."""
    name = str(path)
    root, locator, syntax = parse_yaml(name, path.read_text(encoding="utf-8"))
    if locator is None:
        return None, None, [syntax] if syntax else []
    kind, shape = _describe(model)
    if not isinstance(root, dict):
        issue = ConfigIssue(
            IssueCode.WRONG_TYPE,
            f"{kind} must be a mapping with {shape}",
            SourceLocation(name, 1, 1),
        )
        return None, None, [issue]
    version = _version(model)
    if version is not None and root.get("version") != version:
        return None, None, [_version_issue(root, locator, kind, version)]
    return root, locator, []


def validate(
    data: Any,
    model: type[M],
    locator: Locator,
    base: DocPath = (),
    rule_id: str | None = None,
) -> tuple[M | None, list[ConfigIssue]]:
    """`data` (found at `base` in the file) as `model`, or None and every issue."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, schema_issues(exc, model, locator, base, rule_id)


def _describe(model: type[BaseModel]) -> tuple[str, str]:
    kind = getattr(model, "FILE_KIND", "a config file")
    shape = getattr(model, "FILE_SHAPE", "the documented keys")
    return str(kind), str(shape)


def _version(model: type[BaseModel]) -> int | None:
    declared = model.model_fields.get("version")
    if declared is None:
        return None
    allowed = get_args(declared.annotation)
    return int(allowed[0]) if allowed else None


def _version_issue(root: dict[str, Any], locator: Locator, kind: str, version: int) -> ConfigIssue:
    if "version" not in root:
        message = "the file does not say which format version it uses"
        where = SourceLocation(locator.file, 1, 1)
    else:
        message = (
            f"unsupported {kind.removeprefix('a ').removeprefix('an ')} version {root['version']!r}"
        )
        where = locator.value(("version",))
    return ConfigIssue(
        IssueCode.FILE_VERSION, message, where, hint=f"start the file with `version: {version}`"
    )
