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
INTENT = "intent|"  # key prefix of a notification that was about to be sent


def intent_key(alert: Alert, route: str) -> str:
    """The compacted-topic key of the intent to send `alert` (at its status) along `route`."""
    return f"{INTENT}{route}|{alert.fingerprint}|{alert.status}"


class SeenAlerts:
    """Fingerprint -> the furthest status already delivered (or dead-lettered)."""

    def __init__(self, persist: Callable[[str, str | None], Awaitable[None]] | None = None) -> None:
        self.statuses: dict[str, str] = {}
        # Notifications about to be sent and not yet recorded as handled: after a crash these
        # are the only ones a channel may get twice (docs/alerting.md, "Delivery guarantee").
        self.intents: set[str] = set()
        self._persist = persist

    def load(self, fingerprint: str, status: str | None) -> None:
        """Take in one record of the backing topic (None: a tombstone)."""
        if fingerprint.startswith(INTENT):
            if status is None:
                self.intents.discard(fingerprint)
            else:
                self.intents.add(fingerprint)
            return
        if status is None:
            self.statuses.pop(fingerprint, None)
        elif RANK.get(status, -1) >= RANK.get(self.statuses.get(fingerprint, ""), -1):
            self.statuses[fingerprint] = status

    def already(self, alert: Alert) -> bool:
        """Whether this alert, or a later status of it, was handled before."""
        done = self.statuses.get(alert.fingerprint)
        return done is not None and RANK[done] >= RANK[alert.status]

    async def record(self, alert: Alert, routes: list[str] | None = None) -> None:
        """Remember the alert as handled (persisted before this returns), then drop the
        intents recorded for it along `routes`."""
        self.load(alert.fingerprint, alert.status)
        if self._persist is not None:
            await self._persist(alert.fingerprint, alert.status)
        for route in routes or []:
            key = intent_key(alert, route)
            if key in self.intents:
                self.intents.discard(key)
                if self._persist is not None:
                    await self._persist(key, None)

    def intended(self, alert: Alert, route: str) -> bool:
        """Whether a notifier was about to send this alert along `route` and did not record
        the outcome: the channel may have it already."""
        return intent_key(alert, route) in self.intents

    async def intend(self, alerts: list[Alert], route: str) -> None:
        """Record, before sending, that these alerts are about to go out along `route`."""
        keys = [intent_key(a, route) for a in alerts]
        fresh = [k for k in keys if k not in self.intents]
        self.intents.update(fresh)
        if self._persist is not None:
            for key in fresh:
                await self._persist(key, "sending")
