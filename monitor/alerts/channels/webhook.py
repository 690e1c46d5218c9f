"""The generic JSON webhook, signed with HMAC-SHA256.

Body: `{"version": "1", "receiver", "group_key", "status", "repeat", "alerts": [...]}` (each
alert as on `cx.alerts`). Headers: `X-Cxmon-Timestamp` (Unix seconds) and
`X-Cxmon-Signature: sha256=<hex>` where hex = HMAC-SHA256(secret, f"{timestamp}.{body}").
A receiver verifies with `verify_signature` (recipe in docs/alerting.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from monitor.alerts.channels import ChannelError
from monitor.alerts.model import Alert
from monitor.alerts.secrets import Redactor

SIGNATURE_HEADER = "X-Cxmon-Signature"
TIMESTAMP_HEADER = "X-Cxmon-Timestamp"
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """Whether a request is authentic and fresh (replays older than `tolerance_s` fail)."""
    try:
        age = abs((now if now is not None else time.time()) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


def payload(alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool) -> bytes:
    """The JSON body for one notification."""
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    document = {
        "version": "1",
        "receiver": receiver,
        "group_key": group_key,
        "status": status,
        "repeat": repeat,
        "alerts": [a.model_dump(mode="json") for a in alerts],
    }
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class WebhookChannel:
    """POSTs the notification as JSON; 5xx, 408, 425, 429 and network errors are retryable."""

    url: str
    secret: str | None
    timeout_s: float
    redactor: Redactor
    kind: str = "webhook"

    @property
    def name(self) -> str:
        """The URL with secrets masked."""
        return self.redactor.redact(self.url)

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """POST once; raise ChannelError on any failure."""
        body = payload(alerts, receiver=receiver, group_key=group_key, repeat=repeat)
        headers = {"Content-Type": "application/json", "User-Agent": "cxmon-notifier"}
        if self.secret:
            stamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(self.secret, stamp, body)
        await post(self.url, body, headers, self.timeout_s, self.name, self.redactor)


async def post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, name: str, redactor: Redactor
) -> None:
    """POST `body` to `url` once; raise ChannelError (retryable by status) on any failure."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            if response.status < 300:
                return
            detail = (await response.text())[:200]
            raise ChannelError(
                redactor.redact(f"{name} answered {response.status}: {detail}"),
                retryable=response.status in RETRYABLE_STATUS,
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ChannelError(
            redactor.redact(f"{name}: {type(exc).__name__}: {exc}"), retryable=True
        ) from None
