"""Deliver each (fingerprint, status) once, even when a restarted worker writes an alert again.

`SeenAlerts` is the in-memory view; the notifier backs it with a compacted topic (key:
fingerprint, value: the furthest status delivered) and reads that topic fully before it
delivers anything. A `resolved` alert supersedes its `firing` one, so a late duplicate firing
after the resolution is also skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from monitor.alerts.model import Alert

RANK = {"firing": 0, "resolved": 1}


class SeenAlerts:
    """Fingerprint -> the furthest status already delivered (or dead-lettered)."""

    def __init__(self, persist: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.statuses: dict[str, str] = {}
        self._persist = persist

    def load(self, fingerprint: str, status: str | None) -> None:
        """Take in one record of the backing topic (None: a tombstone)."""
        if status is None:
            self.statuses.pop(fingerprint, None)
        elif RANK.get(status, -1) >= RANK.get(self.statuses.get(fingerprint, ""), -1):
            self.statuses[fingerprint] = status

    def already(self, alert: Alert) -> bool:
        """Whether this alert, or a later status of it, was handled before."""
        done = self.statuses.get(alert.fingerprint)
        return done is not None and RANK[done] >= RANK[alert.status]

    async def record(self, alert: Alert) -> None:
        """Remember the alert as handled (persisted before this returns)."""
        self.load(alert.fingerprint, alert.status)
        if self._persist is not None:
            await self._persist(alert.fingerprint, alert.status)
