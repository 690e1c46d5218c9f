"""The one positioned loader: every issue of a file at once, at file:line:col, for any spec model."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from monitor.alerts.config import AlertingFileSpec, RouteSpec
from monitor.alerts.dispatch.route import compile_routes
from monitor.alerts.loader import load_alerting
from monitor.config import load
from monitor.config.fields import DurationOrZero
from monitor.config.schema import fields_at
from monitor.errors import IssueCode


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetSpec(_Spec):
    """A nested mapping of the toy format."""

    topic: str
    every: DurationOrZero


class ToyFileSpec(_Spec):
    """A file format made up for the test, shaped like a source-mapping file."""

    FILE_KIND: ClassVar[str] = "a toy file"
    FILE_SHAPE: ClassVar[str] = "`version: 1` and `targets:`"

    version: Literal[1]
    targets: list[TargetSpec] = Field(min_length=1)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_file_gives_its_spec_and_no_issues(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, "version: 1\ntargets:\n  - {topic: a, every: 0s}\n"), ToyFileSpec)
    assert loaded.issues == [] and loaded.spec is not None
    assert loaded.spec.targets[0].topic == "a"


def test_every_schema_error_of_a_file_is_reported_at_its_position(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "targets:\n"
        "  - topik: a\n"  # misspelled: one issue, not also "missing 'topic'"
        "    every: 5 minutes\n"
        "  - {}\n"  # two missing fields: two issues
    )
    loaded = load(write(tmp_path, text), ToyFileSpec)
    assert loaded.spec is None
    found = sorted((i.location.line, i.location.col, i.code, i.hint) for i in loaded.issues)
    assert found == [
        (3, 5, IssueCode.UNKNOWN_FIELD, "did you mean 'topic'?"),
        (4, 12, IssueCode.RULE_DURATION, "write a number and a unit: 90s, 15m, 4h, 2d, 1w"),
        (5, 5, IssueCode.MISSING_FIELD, "add `every:`"),
        (5, 5, IssueCode.MISSING_FIELD, "add `topic:`"),
    ]


def test_the_version_is_checked_before_the_rest(tmp_path: Path) -> None:
    [issue] = load(write(tmp_path, "version: 2\ntargets: nonsense\n"), ToyFileSpec).issues
    assert (issue.code, issue.location.line, issue.location.col) == (IssueCode.FILE_VERSION, 1, 10)
    assert issue.message == "unsupported toy file version 2"
    [issue] = load(write(tmp_path, "targets: []\n"), ToyFileSpec).issues
    assert issue.code == IssueCode.FILE_VERSION and issue.hint == "start the file with `version: 1`"


def test_a_file_that_is_not_a_mapping_says_what_it_should_be(tmp_path: Path) -> None:
    [issue] = load(write(tmp_path, "- just\n- a list\n"), ToyFileSpec).issues
    assert issue.code == IssueCode.WRONG_TYPE
    assert issue.message == "a toy file must be a mapping with `version: 1` and `targets:`"


def test_yaml_syntax_errors_are_positioned(tmp_path: Path) -> None:
    [issue] = load(write(tmp_path, "version: 1\ntargets: [a\n"), ToyFileSpec).issues
    assert issue.code == IssueCode.YAML_SYNTAX and issue.location.line == 3


def test_unknown_field_hints_follow_nested_models_and_aliases() -> None:
    assert "continue" in fields_at(AlertingFileSpec, ("route", "routes", 0))
    assert fields_at(ToyFileSpec, ("targets", 3)) == ["every", "topic"]


def test_route_compilation_returns_every_problem_positioned(tmp_path: Path) -> None:
    text = (
        "version: 1\n"
        "receivers:\n"
        "  - {name: a, channels: [console://]}\n"
        "route:\n"
        "  receiver: a\n"
        "  routes:\n"
        "    - match_re: {rule: '(unclosed'}\n"
        "      mute_time: [{timezone: Mars/Olympus}]\n"
    )
    path = tmp_path / "alerting.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_alerting(path, {})
    assert loaded.config is None
    assert sorted((i.location.line, i.location.col, i.code) for i in loaded.errors) == [
        (7, 24, IssueCode.WRONG_TYPE),
        (8, 30, IssueCode.WRONG_TYPE),
    ]
    spec = RouteSpec.model_validate({"receiver": "a", "match_re": {"rule": "("}})
    root, issues = compile_routes(spec)
    assert root is None and [i.code for i in issues] == [IssueCode.WRONG_TYPE]
