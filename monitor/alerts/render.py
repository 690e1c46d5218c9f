"""How an alert reads in each channel: Markdown (Slack via Apprise's mrkdwn conversion, Teams),
HTML (email), plain text.

A notification carries one group's alerts. Each alert is one section (title, severity, customer
key, message, owners as the department gap, the evidence timeline, runbook); sections are packed
into as few messages as fit the channel's size limits, and a section too large on its own loses
evidence rows, then characters. A *resolved* update names the alert it resolves (title, key,
fingerprint and when it fired).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from apprise.plugins.slack import NotifySlack

from monitor.alerts.model import Alert

Flavour = Literal["markdown", "html", "text"]
FLAVOURS: tuple[Flavour, ...] = ("markdown", "html", "text")
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
SEVERITY_ICON = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵", "info": "⚪"}


@dataclass(frozen=True)
class Limits:
    """Characters a channel accepts in one message's title and body."""

    title: int = 250
    body: int = 32768


# Block Kit: a header block holds 150 characters, a section's text 3,000.
SLACK_LIMITS = Limits(title=150, body=3000)


@dataclass(frozen=True)
class Message:
    """One message as a channel sends it."""

    title: str
    body: str


def title_of(alerts: Sequence[Alert]) -> str:
    """`[FIRING] HIGH Billing charged ... (cust-1)` for one alert; counts for a group."""
    first = alerts[0]
    if len(alerts) == 1:
        return f"[{first.status.upper()}] {first.severity.upper()} {first.title} ({first.key})"
    firing = sum(1 for a in alerts if a.status == "firing")
    resolved = len(alerts) - firing
    counts = ", ".join(
        part
        for part in (
            f"{firing} firing" if firing else "",
            f"{resolved} resolved" if resolved else "",
        )
        if part
    )
    rules = sorted({a.rule_id for a in alerts})
    what = first.title if len(rules) == 1 else f"{len(rules)} rules"
    return f"[{counts}] {what}"


def section(alert: Alert, flavour: Flavour, max_evidence: int | None = None) -> str:
    """One alert, readable on its own."""
    b = _Fmt(flavour)
    icon = SEVERITY_ICON.get(alert.severity, "") if alert.status == "firing" else "✅"
    lines = [
        f"{icon} {b.bold(alert.status.upper() + ' · ' + alert.severity.upper())} {b.text(alert.title)}".strip(),
        f"{b.bold('Customer:')} {b.code(alert.key)}",
        b.text(alert.message),
        f"{b.bold('Gap:')} {b.text(alert.from_department)} → {b.text(alert.to_department)}"
        f" (owners: {b.text(', '.join(alert.owners))}) · rule {b.code(alert.rule_id)}",
    ]
    if alert.status == "resolved":
        # event_time is when it resolved; older alerts on the topic lack raised_at
        raised = f" raised {alert.raised_at.strftime(TIME_FORMAT)}" if alert.raised_at else ""
        lines.append(
            f"{b.bold('Resolves:')} the alert{raised}"
            f" for {b.text(alert.key)} (fingerprint {b.code(alert.fingerprint)})"
        )
    evidence = (
        alert.evidence
        if max_evidence is None
        else alert.evidence[-max_evidence:]
        if max_evidence
        else []
    )
    if alert.evidence:
        lines.append(b.bold("Timeline:"))
        hidden = len(alert.evidence) - len(evidence)
        if hidden:
            lines.append(b.item(f"… {hidden} earlier event(s)"))
        for item in evidence:
            when = item.time.strftime(TIME_FORMAT)
            lines.append(b.item(f"{when} · {b.text(item.department)} · {b.code(item.type)}"))
    if alert.runbook:
        lines.append(f"{b.bold('Runbook:')} {b.link(alert.runbook)}")
    return b.join(lines)


def render(alerts: Sequence[Alert], flavour: Flavour, limits: Limits = Limits()) -> list[Message]:
    """The messages for one notification: sections packed within the channel's limits."""
    if not alerts:
        return []
    title = _clip(title_of(alerts), limits.title)
    separator = "\n<hr>\n" if flavour == "html" else "\n\n"
    chunks: list[str] = []
    current = ""
    for alert in alerts:
        text = _fit(alert, flavour, limits.body)
        candidate = f"{current}{separator}{text}" if current else text
        if len(candidate) <= limits.body:
            current = candidate
        else:
            chunks.append(current)
            current = text
    chunks.append(current)
    if len(chunks) == 1:
        return [Message(title, chunks[0])]
    return [
        Message(_clip(f"{title} ({index}/{len(chunks)})", limits.title), chunk)
        for index, chunk in enumerate(chunks, start=1)
    ]


def _fit(alert: Alert, flavour: Flavour, budget: int) -> str:
    text = section(alert, flavour)
    keep = len(alert.evidence)
    while len(text) > budget and keep > 0:
        keep = keep // 2
        text = section(alert, flavour, max_evidence=keep)
    return _clip(text, budget)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def slack_blocks(message: Message) -> dict[str, Any]:
    """The Block Kit attachment Apprise's Slack plugin sends for a Markdown message (colour and
    footer aside): a header with the title and a mrkdwn section with the converted body."""
    return {
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": html.escape(message.title, quote=False),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": to_mrkdwn(message.body)},
            },
        ]
    }


def to_mrkdwn(markdown: str) -> str:
    """Markdown as Apprise converts it for Slack."""
    converted: str = NotifySlack._commonmark_to_slack(markdown)  # type: ignore[no-untyped-call]
    return converted


def teams_card(message: Message) -> dict[str, Any]:
    """The Adaptive Card body Apprise's Teams (Workflows) plugin sends (icon aside)."""
    return {
        "type": "AdaptiveCard",
        "body": [
            {
                "type": "TextBlock",
                "text": message.title,
                "style": "heading",
                "weight": "Bolder",
                "size": "Large",
                "id": "title",
            },
            {
                "type": "TextBlock",
                "text": message.body,
                "style": "default",
                "wrap": True,
                "id": "body",
            },
        ],
    }


class _Fmt:
    """Markup for one flavour."""

    def __init__(self, flavour: Flavour) -> None:
        self.flavour = flavour

    def text(self, value: str) -> str:
        if self.flavour == "html":
            return html.escape(value)
        return value

    def bold(self, value: str) -> str:
        value = self.text(value)
        return {"markdown": f"**{value}**", "html": f"<b>{value}</b>"}.get(self.flavour, value)

    def code(self, value: str) -> str:
        value = self.text(value)
        return {
            "markdown": f"`{value}`",
            "html": f"<code>{value}</code>",
        }.get(self.flavour, value)

    def link(self, url: str) -> str:
        if self.flavour == "markdown":
            return f"[{url}]({url})"
        if self.flavour == "html":
            return f'<a href="{html.escape(url)}">{html.escape(url)}</a>'
        return url

    def item(self, value: str) -> str:
        return f"<li>{value}</li>" if self.flavour == "html" else f"  • {value}"

    def join(self, lines: list[str]) -> str:
        if self.flavour == "html":
            return "<br>\n".join(lines)
        return "\n".join(lines)
