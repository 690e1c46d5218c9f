"""Noticing that rule files changed (for hot reload): a digest of every rule file's name and bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from monitor.rules.loader import collect_files


def digest(paths: Iterable[Path]) -> str:
    """A value that changes whenever a rule file is added, removed or edited."""
    hasher = hashlib.sha256()
    for path in collect_files(paths):
        hasher.update(str(path).encode())
        try:
            hasher.update(path.read_bytes())
        except OSError:
            hasher.update(b"<unreadable>")  # being replaced right now; the next look sees it
    return hasher.hexdigest()


@dataclass
class RuleWatch:
    """Remembers the digest of the running rules and says when the files differ."""

    paths: list[Path]
    seen: str = field(default="")

    def __post_init__(self) -> None:
        self.seen = self.seen or digest(self.paths)

    def changed(self) -> bool:
        """Whether the files differ from what was last seen (and remember the new state)."""
        now = digest(self.paths)
        if now == self.seen:
            return False
        self.seen = now
        return True
