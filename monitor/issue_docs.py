"""What each issue code means: the text `cxmon validate --explain CODE` prints and the table in
docs/rules.md shows (a test keeps the two the same)."""

from __future__ import annotations

from monitor.errors import IssueCode

ISSUE_DOCS: dict[IssueCode, str] = {
    IssueCode.YAML_SYNTAX: "the file is not valid YAML",
    IssueCode.YAML_ALIASES: 'the file\'s aliases (`*name`) would expand to more than 10,000 values beyond those written, or it uses over 1,000 aliases (a "billion laughs"); refused before anything is built',
    IssueCode.FILE_VERSION: "the file does not declare `version: 1`",
    IssueCode.UNKNOWN_FIELD: 'a key the format does not know (with "did you mean")',
    IssueCode.MISSING_FIELD: "a required key is absent",
    IssueCode.WRONG_TYPE: "a value has the wrong type or is not one of the allowed values",
    IssueCode.RULE_DURATION: "a duration is not like `90s`, `15m`, `4h`, `2d`, `1w`",
    IssueCode.RULE_KIND_FIELDS: "the rule lacks a field its kind needs, or has one it cannot use",
    IssueCode.DUPLICATE_RULE: "two rules share an id",
    IssueCode.DUPLICATE_NAME: "two files define the same list, macro or calendar",
    IssueCode.CEL_SYNTAX: "a condition does not parse (the column points into the expression)",
    IssueCode.CEL_SCOPE: "a condition reads a slot that is not known there",
    IssueCode.UNKNOWN_NAME: 'a name that is no slot, list or macro (with "did you mean")',
    IssueCode.TEMPLATE_SYNTAX: "a message template does not parse",
    IssueCode.NO_RULES: "no rule files were found",
    IssueCode.RULE_UNTESTED: "a rule marked `status: stable` that no rule test expects (`cxmon validate` only: a test file's `tests[].expect[].rule`, not a comment)",
    IssueCode.RULE_FILE_TOO_LARGE: "a file is larger than the setting `max_rule_file_bytes`",
    IssueCode.TOO_MANY_RULES: "more rules than the setting `max_rules`",
    IssueCode.CEL_FUNCTION: "a condition calls a function CEL does not provide",
    IssueCode.CEL_COST: "a condition could do more work per event than the setting `max_cel_cost`",
    IssueCode.TEMPLATE_UNSAFE: "a message template uses a construct the sandbox refuses (macros, includes, nested loops, private attributes)",
    IssueCode.TEMPLATE_FILTER: 'a message template uses a filter (`| wen`) or test (`is numbr`) that does not exist (with "did you mean")',
    IssueCode.TEMPLATE_NAME: "a message template reads a name the rule's kind never sets (`{{ then.x }}` in a `burst`, `{{ count }}` outside one): it would render as empty text",
    IssueCode.DUPLICATE_TOPIC: "two source mappings read the same topic",
    IssueCode.UNUSED_DEPARTMENT: "a warning: a source mapping's department is named by no rule's `source:`",
    IssueCode.UNUSED_NAME: "a warning: a list, macro or calendar no rule (or macro) uses",
    IssueCode.NEVER_FIRES: "a warning: a `where` that is false whatever the event (`where: \"false\"`, `\"'a' == 'b'\"`, a macro that comes to that): the rule can never fire; use `enabled: false` to switch a rule off",
}

WARNINGS = frozenset({IssueCode.UNUSED_DEPARTMENT, IssueCode.UNUSED_NAME, IssueCode.NEVER_FIRES})
"""Codes reported as warnings: they never keep a file from loading."""
