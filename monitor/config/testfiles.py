"""Running a test file — rule tests (`rule_files:`) and mapping tests (`source_files:`) alike:
read it, check that the files it tests exist beside it, load them, run its cases. Every problem
is a `ConfigIssue` at `file:line:col`; a case reports PASS or FAIL with the lines to show.

What differs between the two kinds is a `TestFormat`: the spec model, the field that lists the
files under test, how to load those files, and how to run the cases against them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from monitor.config.loader import load
from monitor.config.locate import Locator
from monitor.errors import ConfigIssue, IssueCode, SourceLocation


class Case(Protocol):
    """One test's outcome."""

    @property
    def name(self) -> str: ...

    @property
    def location(self) -> SourceLocation: ...

    @property
    def passed(self) -> bool: ...

    def failure_lines(self) -> list[tuple[str, str]]:
        """What to show under FAIL: (style, text) lines, the style a colour name."""
        ...


class Loaded(Protocol):
    """The files under test, loaded: their issues are the test file's too."""

    @property
    def issues(self) -> list[ConfigIssue]: ...


C = TypeVar("C", bound=Case)
M = TypeVar("M", bound=BaseModel)
L = TypeVar("L", bound=Loaded)


@dataclass
class TestFileResult(Generic[C]):
    """Every test of one file, or the issues that kept it from running."""

    file: str
    cases: list[C] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ConfigIssue]:
        """The issues that stopped the file from running."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def passed(self) -> bool:
        """Whether the file ran and every test in it passed."""
        return not self.errors and all(c.passed for c in self.cases)


@dataclass(frozen=True)
class TestFormat(Generic[M, L, C]):
    """One kind of test file."""

    model: type[M]
    files_field: str  # lists the files under test, relative to the test file ("rule_files")
    file_noun: str  # one of them, in messages ("rule file")
    missing_code: IssueCode  # the issue for a file that does not exist
    load: Callable[[list[Path]], L]
    # checks the spec against what was loaded (issues into the result), then runs the cases
    run: Callable[[M, L, Locator, TestFileResult[C]], None]


def run_test_file(path: Path, kind: TestFormat[M, L, C]) -> TestFileResult[C]:
    """Load one test file and the files it tests, and run each test; raises only for I/O."""
    loaded = load(path, kind.model)
    result: TestFileResult[C] = TestFileResult(loaded.file, issues=loaded.issues)
    spec, locator = loaded.spec, loaded.locator
    if spec is None or locator is None:
        return result
    targets = []
    for index, name in enumerate(getattr(spec, kind.files_field)):
        target = path.parent / name
        if not target.exists():
            result.issues.append(
                ConfigIssue(
                    kind.missing_code,
                    f"{kind.file_noun} {name!r} not found (looked for {target})",
                    locator.value((kind.files_field, index)),
                    hint=f"{kind.files_field} are relative to the test file",
                )
            )
        targets.append(target)
    if result.issues:
        return result
    under_test = kind.load(targets)
    result.issues.extend(under_test.issues)
    kind.run(spec, under_test, locator, result)
    return result
