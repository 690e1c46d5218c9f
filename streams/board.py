"""Kafka glue of the conflict board: build it, write its silences, seed Alertmanager channels.

`streams.notifier.follow_alerts` feeds the board `cx.alerts` from the beginning with a
group-less `CompactedView`, so a restarted notifier rebuilds the same board without touching
the notifier's committed offsets. Once read to the end, the open conflicts also tell
Alertmanager channels which alerts to keep re-posting after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from monitor.alerts.board.api import BoardApp, Unavailable
from monitor.alerts.board.state import BoardState
from monitor.alerts.channels.alertmanager import AlertmanagerChannel
from monitor.alerts.dispatch.route import Route, match_routes
from monitor.alerts.labels import alert_labels
from monitor.alerts.loader import AlertingConfig
from monitor.alerts.model import Alert
from monitor.alerts.pipeline import Receiver
from monitor.alerts.redact import Redaction
from monitor.alerts.silences import Silence, SilenceBook
from monitor.events.envelope import utcnow
from monitor.metrics import NotifierMetrics
from monitor.settings import Settings

log = logging.getLogger("cxmon.notify")
WRITE_TIMEOUT_S = 15.0


def seed_alertmanagers(
    alerts: list[Alert],
    root: Route,
    receivers: Mapping[str, Receiver],
    silences: SilenceBook,
    delivered: Mapping[str, str],
) -> int:
    """Give each Alertmanager channel the open alerts routed to it that were posted before
    (delivered as firing, not silenced now); returns how many (alert, channel) pairs."""
    now = utcnow()
    seeded = 0
    for alert in alerts:
        if delivered.get(alert.fingerprint) != "firing":
            continue  # not delivered yet (the dispatcher will) or resolved since
        labels = alert_labels(alert)
        if silences.silencing(labels, now) is not None:
            continue
        for route in match_routes(root, labels):
            receiver = receivers[route.receiver]
            shown = receiver.redaction.apply(alert) if receiver.redaction else alert
            for channel in receiver.channels:
                if isinstance(channel, AlertmanagerChannel):
                    channel.seed([shown])
                    seeded += 1
    return seeded


def new_board(settings: Settings, config: AlertingConfig, metrics: NotifierMetrics) -> BoardApp:
    """The board as the settings and `alerting.yaml`'s `board:` section describe it."""
    state = BoardState(
        expire_after=timedelta(seconds=settings.board_expire_s),
        keep_resolved=timedelta(seconds=settings.board_keep_resolved_s),
        redaction=Redaction.from_spec(config.spec.board.redact),
        observe=metrics.observe_board,
    )
    token = settings.board_token.get_secret_value() if settings.board_token else None
    hosts = frozenset(h.strip().lower() for h in settings.board_hosts.split(",") if h.strip())
    return BoardApp(
        state,
        SilenceBook(),
        token=token or None,
        on_write=metrics.count_board_write,
        hosts=hosts,
    )


class BoardWriter:
    """Writes a silence from the board (an HTTP thread) through the notifier's producer on its
    event loop, then applies it to the notifier's silence book there."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, producer: Any, topic: str, apply: Any
    ) -> None:
        self.loop = loop
        self.producer = producer
        self.topic = topic
        self.apply = apply  # the notifier's handler for a silences record

    def __call__(self, silence: Silence) -> None:
        """Block until the broker acknowledged the record; raise Unavailable otherwise."""
        future = asyncio.run_coroutine_threadsafe(self._write(silence), self.loop)
        try:
            future.result(timeout=WRITE_TIMEOUT_S)
        except Exception as exc:  # any producer error: the client may try again
            future.cancel()
            raise Unavailable(f"could not write the silence: {exc!r}") from None

    async def _write(self, silence: Silence) -> None:
        key, value = silence.id.encode(), silence.to_bytes()
        await self.producer.send_and_wait(self.topic, key=key, value=value)
        self.apply(key, value)  # shown at once; the view applies the same record again later
