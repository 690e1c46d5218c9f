"""The error vocabulary shared by every part of cxmon: locations, issue codes, config issues."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum


class CxmonError(Exception):
    """Root of every error cxmon raises on purpose."""


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A position in a file, 1-based line and column (0 means unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line == 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class IssueCode(StrEnum):
    """Stable codes for everything that can be wrong with a rule, alerting or rule-test file.
    docs/rules.md describes each in one line (a test checks it lists them all)."""

    YAML_SYNTAX = "YAML_SYNTAX"
    YAML_ALIASES = "YAML_ALIASES"
    FILE_VERSION = "FILE_VERSION"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    RULE_DURATION = "RULE_DURATION"
    RULE_KIND_FIELDS = "RULE_KIND_FIELDS"
    DUPLICATE_RULE = "DUPLICATE_RULE"
    DUPLICATE_NAME = "DUPLICATE_NAME"
    CEL_SYNTAX = "CEL_SYNTAX"
    CEL_SCOPE = "CEL_SCOPE"
    UNKNOWN_NAME = "UNKNOWN_NAME"
    TEMPLATE_SYNTAX = "TEMPLATE_SYNTAX"
    NO_RULES = "NO_RULES"
    RULE_UNTESTED = "RULE_UNTESTED"
    RULE_FILE_TOO_LARGE = "RULE_FILE_TOO_LARGE"
    TOO_MANY_RULES = "TOO_MANY_RULES"
    CEL_FUNCTION = "CEL_FUNCTION"
    CEL_COST = "CEL_COST"
    TEMPLATE_UNSAFE = "TEMPLATE_UNSAFE"
    TEMPLATE_FILTER = "TEMPLATE_FILTER"
    TEMPLATE_NAME = "TEMPLATE_NAME"
    DUPLICATE_TOPIC = "DUPLICATE_TOPIC"
    UNUSED_DEPARTMENT = "UNUSED_DEPARTMENT"
    UNUSED_NAME = "UNUSED_NAME"
    NEVER_FIRES = "NEVER_FIRES"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config file (rules, alerting, rule tests), printable as
    `file:line:col: error[CODE] ...`."""

    code: IssueCode
    message: str
    location: SourceLocation
    rule_id: str | None = None
    hint: str | None = None
    severity: str = field(default="error")

    def __str__(self) -> str:
        rule = f"rule '{self.rule_id}': " if self.rule_id else ""
        line = f"{self.location}: {self.severity}[{self.code}] {rule}{self.message}"
        return f"{line}\n  hint: {self.hint}" if self.hint else line

    def to_json(self) -> str:
        """One JSON object, for machines (`--format json`)."""
        return json.dumps(
            {
                "code": str(self.code),
                "severity": self.severity,
                "file": self.location.file,
                "line": self.location.line,
                "col": self.location.col,
                "rule": self.rule_id,
                "message": self.message,
                "hint": self.hint,
            }
        )


class RuleError(CxmonError):
    """Raised at a boundary (CLI, worker start, reload) when rules have errors."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))
