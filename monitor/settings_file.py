"""The settings file named by `CXMON_CONFIG`, and settings errors people can act on.

A settings error names the environment variable and, when the value came from the file, its
`file:line:col`; it never repeats the value (it may be a password).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import CxmonError, SourceLocation

ENV_PREFIX = "CXMON_"


class SettingsFileError(CxmonError):
    """The settings file cannot be read or is not a YAML mapping."""

    def __init__(self, location: SourceLocation, problem: str, hint: str) -> None:
        super().__init__(f"{location}: {problem}\n  hint: {hint}")
        self.location = location


@dataclass
class SettingsFile:
    """What the file holds, and where each top-level key is written."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)
    positions: dict[str, SourceLocation] = field(default_factory=dict)


def load_settings_file(path: Path) -> SettingsFile:
    """Read a YAML mapping of settings (keys are field names: `bootstrap_servers: ...`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsFileError(
            SourceLocation(str(path)),
            f"cannot read the settings file: {exc.strerror}",
            "CXMON_CONFIG must name a readable YAML file, or be unset",
        ) from None
    try:
        values = YAML(typ="safe").load(text)
        positioned = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) if isinstance(exc, MarkedYAMLError) else None
        location = SourceLocation(
            str(path), mark.line + 1 if mark else 0, mark.column + 1 if mark else 0
        )
        problem = getattr(exc, "problem", None) or str(exc)
        raise SettingsFileError(
            location, f"not valid YAML: {problem}", "write one `name: value` per line"
        ) from None
    if values is None:
        return SettingsFile(path)
    if not isinstance(values, dict):
        raise SettingsFileError(
            SourceLocation(str(path), 1, 1),
            f"expected a mapping of settings, got a {type(values).__name__}",
            "write one `name: value` per line, e.g. `bootstrap_servers: kafka:9092`",
        )
    positions = {
        str(key): SourceLocation(str(path), line + 1, col + 1)
        for key in positioned
        for line, col in [positioned.lc.key(key)]
    }
    return SettingsFile(path, {str(k): v for k, v in values.items()}, positions)


def explain(exc: ValidationError, file: SettingsFile | None = None) -> list[str]:
    """One line per problem, without the offending values."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        name = str(error["loc"][0]) if error["loc"] else ""
        if not name:
            lines.append(f"settings: {message}")
            continue
        where = f"{ENV_PREFIX}{name.upper()}"
        if file is not None and name in file.positions:
            where = f"{file.positions[name]}: {name} (or {where})"
        if error["type"] == "extra_forbidden":
            message = "unknown setting; see the settings reference in docs/deploy.md"
        lines.append(f"{where}: {message}")
    return lines
