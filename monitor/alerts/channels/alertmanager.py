"""Alertmanager as a receiver: posts alerts to its API v2 (`POST /api/v2/alerts`).

Each cxmon alert is one Alertmanager alert whose labels identify the conflict (rule, gap,
fingerprint; the customer key only when the channel allows it) and whose annotations carry the
message, runbook and evidence. Alertmanager resolves an alert by itself once its `endsAt` has
passed, so, as Prometheus does, alerts still firing are re-posted every `resend` with `endsAt`
four `resend`s ahead; a resolved alert is posted once with the time it resolved.

Contract: `send` posts once and raises `ChannelError` (400 and other 4xx: not retryable); the
re-post loop runs on the event loop that first called `send` or `seed` and only logs failures
(the next round tries again). Not thread-safe: use from one event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from monitor.alerts.channels import ChannelError
from monitor.alerts.channels.webhook import post
from monitor.alerts.model import Alert
from monitor.alerts.secrets import Redactor
from monitor.events.envelope import utcnow

log = logging.getLogger("cxmon.notify")
RESEND_HORIZON = timedelta(days=7)  # as reminders: alerts nobody resolves stop being re-posted
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_]")
OWN_LABELS = ("alertname", "severity", "kind", "owners", "from_department", "to_department")


def api_url(url: str) -> str:
    """`alertmanager://h:p[/prefix]` (http), `alertmanagers://` (https) or an http(s) URL ->
    the alerts endpoint; raises ValueError for anything else."""
    parts = urlsplit(url)
    scheme = {"alertmanager": "http", "alertmanagers": "https", "http": "http", "https": "https"}
    if parts.scheme not in scheme or not parts.hostname:
        raise ValueError(
            f"an Alertmanager URL looks like alertmanager://HOST:PORT, got {parts.scheme}://…"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/api/v2/alerts"):
        path += "/api/v2/alerts"
    return urlunsplit((scheme[parts.scheme], parts.netloc, path, "", ""))


def label_name(name: str) -> str:
    """A Prometheus-safe label name: other characters become `_`, a leading digit gets `_`."""
    safe = _LABEL_NAME.sub("_", name)
    return f"_{safe}" if safe[:1].isdigit() else safe


def labels_of(alert: Alert, *, key_label: bool) -> dict[str, str]:
    """The label set identifying one conflict in Alertmanager (empty values left out)."""
    labels = {label_name(k): v for k, v in alert.labels.items()}
    labels.update(
        alertname=alert.rule_id,
        severity=alert.severity,
        kind=alert.kind,
        owners=",".join(alert.owners),
        from_department=alert.from_department,
        to_department=alert.to_department,
        fingerprint=alert.fingerprint,
    )
    if key_label:
        labels["key"] = alert.key
    else:
        labels.pop("key", None)
    return {k: v for k, v in labels.items() if v}


def evidence_text(alert: Alert) -> str:
    """The timeline, one line per event: time, department, event type."""
    return "\n".join(
        f"{item.time.isoformat().replace('+00:00', 'Z')} {item.department} {item.type}"
        for item in alert.evidence
    )


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def document(alert: Alert, now: datetime, resend: timedelta, *, key_label: bool) -> dict[str, Any]:
    """One element of the `POST /api/v2/alerts` body."""
    annotations = {
        "summary": alert.title,
        "message": alert.message,
        "runbook_url": alert.runbook or "",
        "evidence": evidence_text(alert),
    }
    if alert.status == "resolved":
        ends = max(alert.event_time, alert.detected_at)
        ends = min(ends, now)  # Alertmanager keeps an alert ending in the future firing
    else:
        ends = now + 4 * resend
    return {
        "labels": labels_of(alert, key_label=key_label),
        "annotations": {k: v for k, v in annotations.items() if v},
        "startsAt": _time(min(alert.event_time, ends)),
        "endsAt": _time(ends),
    }


@dataclass
class AlertmanagerChannel:
    """Posts to one Alertmanager; re-posts the alerts it saw firing every `resend`."""

    url: str
    redactor: Redactor
    timeout_s: float = 10.0
    resend: timedelta = timedelta(minutes=1)
    key_label: bool = False
    on_resend: Callable[[str], None] | None = None  # called with "success"/"failure" per round
    now: Callable[[], datetime] = utcnow
    kind: str = "alertmanager"
    firing: dict[str, Alert] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.endpoint = api_url(self.url)

    @property
    def name(self) -> str:
        """The URL with secrets masked."""
        return self.redactor.redact(self.url)

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """Post the alerts once; remember firing ones for re-posting, forget resolved ones."""
        self._track(alerts)
        await self._post(alerts)

    def seed(self, alerts: Sequence[Alert]) -> None:
        """Alerts posted before a restart that are still firing: re-post them from now on."""
        self._track(alerts)

    def _track(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            if alert.status == "firing":
                self.firing[alert.fingerprint] = alert
            else:
                self.firing.pop(alert.fingerprint, None)
        if self._task is None and self.firing:
            self._task = asyncio.get_running_loop().create_task(
                self._resend_loop(), name=f"alertmanager resend {self.name}"
            )

    async def _post(self, alerts: Sequence[Alert]) -> None:
        now = self.now()
        body = json.dumps(
            [document(a, now, self.resend, key_label=self.key_label) for a in alerts]
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "cxmon-notifier"}
        await post(self.endpoint, body, headers, self.timeout_s, self.name, self.redactor)

    async def resend_once(self) -> None:
        """Re-post every alert still firing (dropping those older than the horizon)."""
        horizon = self.now() - RESEND_HORIZON
        for fingerprint, alert in list(self.firing.items()):
            if alert.detected_at < horizon:
                del self.firing[fingerprint]
        if not self.firing:
            return
        try:
            await self._post(list(self.firing.values()))
        except ChannelError as exc:
            log.warning("re-posting %d firing alert(s) failed: %s", len(self.firing), exc)
            if self.on_resend is not None:
                self.on_resend("failure")
            return
        if self.on_resend is not None:
            self.on_resend("success")

    async def _resend_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resend.total_seconds())
            await self.resend_once()
