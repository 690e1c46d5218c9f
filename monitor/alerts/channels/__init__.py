"""Channels: where a receiver's notifications go. Each reports only (retryable, error).

A channel renders the alerts in its own flavour and sends them. On failure it raises
`ChannelError(retryable=...)`; the deliver stage owns the retry policy and the dead-letter topic.
Channels hold no retry state and may be called concurrently for different groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from monitor.alerts.model import Alert
from monitor.errors import CxmonError


class ChannelError(CxmonError):
    """A send failed; `retryable` says whether trying again may help (5xx, timeouts, 429)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    """Sends one notification (one group's alerts) somewhere."""

    @property
    def kind(self) -> str:
        """The metrics label: apprise, webhook, console or kafka."""
        ...

    @property
    def name(self) -> str:
        """For logs and errors, secrets masked."""
        ...

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """Deliver the alerts, or raise ChannelError."""
        ...
