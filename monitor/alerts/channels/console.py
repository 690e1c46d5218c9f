"""The console channel: alerts as plain text lines on the notifier's standard output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from monitor.alerts.model import Alert
from monitor.alerts.render import render


@dataclass
class ConsoleChannel:
    """Prints each notification; never fails."""

    write: Callable[[str], None]
    kind: str = "console"
    name: str = "console://"

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """Print the notification's plain-text rendering, marked with the receiver."""
        for message in render(alerts, "text"):
            prefix = "(reminder) " if repeat else ""
            self.write(f"[{receiver}] {prefix}{message.title}\n{message.body}\n")
