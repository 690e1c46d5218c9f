"""Team channels through Apprise URLs: Slack, Microsoft Teams (Workflows), email, PagerDuty and
the ~100 other services Apprise supports. cxmon only picks the message flavour and size limits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apprise

from monitor.alerts.channels import ChannelError
from monitor.alerts.model import Alert
from monitor.alerts.render import SLACK_LIMITS, Flavour, Limits, render
from monitor.alerts.secrets import Redactor

_BODY_FORMAT: dict[Flavour, str] = {
    "markdown": apprise.NotifyFormat.MARKDOWN,
    "html": apprise.NotifyFormat.HTML,
    "text": apprise.NotifyFormat.TEXT,
}


def flavour_for(plugin: Any) -> Flavour:
    """The rendering that reads best in this service (Apprise turns Markdown into Slack mrkdwn)."""
    protocols = _protocols(plugin)
    formats = {str(getattr(f, "value", f)) for f in _tuple(plugin.notify_format)}
    if "mailto" in protocols or "mailtos" in protocols or "html" in formats:
        return "html"
    return "markdown" if "markdown" in formats else "text"


def limits_for(plugin: Any) -> Limits:
    """The plugin's title/body limits (Block Kit's stricter ones for Slack)."""
    if "slack" in _protocols(plugin):
        return SLACK_LIMITS
    title = int(plugin.title_maxlen) if plugin.title_maxlen and plugin.title_maxlen > 0 else 250
    body = int(plugin.body_maxlen)
    if not plugin.title_maxlen:  # the service has no title: Apprise puts it in the body
        body -= title + 2
    return Limits(title=title, body=max(body, 200))


def _protocols(plugin: Any) -> set[str]:
    return {str(p) for p in (*_tuple(plugin.secure_protocol), *_tuple(plugin.protocol))}


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list | tuple | set) else (value,)


@dataclass
class AppriseChannel:
    """One Apprise URL. A failed send is retryable: Apprise does not say why it failed."""

    url: str
    redactor: Redactor
    timeout_s: float = 10.0
    kind: str = "apprise"
    _apprise: apprise.Apprise = field(init=False, repr=False)
    _plugin: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        plugin = apprise.Apprise.instantiate(self.url)
        if plugin is None:
            raise ValueError(self.redactor.redact(f"not a URL Apprise understands: {self.url}"))
        self._plugin = plugin
        if "slack" in _protocols(plugin) and "blocks=" not in self.url:
            plugin.use_blocks = True  # type: ignore[attr-defined]  # Block Kit unless the URL says no
        self._apprise = apprise.Apprise()
        self._apprise.add(plugin)

    @property
    def name(self) -> str:
        """Apprise's own privacy-safe form of the URL, masked again to be sure."""
        return self.redactor.redact(str(self._plugin.url(privacy=True)))

    @property
    def flavour(self) -> Flavour:
        """How messages are rendered for this service."""
        return flavour_for(self._plugin)

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """Send each message of the rendered notification; raise ChannelError on the first failure."""
        notify_type = (
            apprise.NotifyType.FAILURE
            if any(a.status == "firing" for a in alerts)
            else apprise.NotifyType.SUCCESS
        )
        for message in render(alerts, self.flavour, limits_for(self._plugin)):
            title = f"(reminder) {message.title}" if repeat else message.title
            result = await self._apprise.async_notify(
                body=message.body,
                title=title,
                notify_type=notify_type,
                body_format=_BODY_FORMAT[self.flavour],
                timeout=self.timeout_s,
                log_level=logging.WARNING,
            )
            if not result:
                reasons = [entry.message for entry in result.logs()][-3:]
                detail = "; ".join(reasons) or f"status {result.status.name}"
                raise ChannelError(self.redactor.redact(f"{self.name}: {detail}"), retryable=True)
