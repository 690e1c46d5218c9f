"""Printing rule issues: one line each (with a hint), then a summary; colour only on a terminal."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console

from monitor.errors import ConfigIssue


def print_issues(issues: Sequence[ConfigIssue], console: Console) -> None:
    """Print every issue and a one-line summary (nothing when there are none)."""
    for issue in issues:
        colour = "red" if issue.severity == "error" else "yellow"
        console.print(f"[{colour}]{_escape(str(issue).splitlines()[0])}[/{colour}]")
        if issue.hint:
            console.print(f"  [dim]hint:[/dim] {_escape(issue.hint)}")
    errors = sum(1 for i in issues if i.severity == "error")
    if issues:
        console.print(f"{errors} error(s), {len(issues) - errors} warning(s)")


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
