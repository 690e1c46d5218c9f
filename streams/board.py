"""Kafka glue of the conflict board: feed it `cx.alerts` from the beginning, write its silences.

The board reads the alerts topic with its own group-less consumer (as `CompactedView` reads the
compacted topics), so a restarted notifier rebuilds the same board without touching the
notifier's committed offsets. Once read to the end, the open conflicts also tell Alertmanager
channels which alerts to keep re-posting after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

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
from streams.kafka_security import aiokafka_config

if TYPE_CHECKING:
    from streams.notifier import Notifier

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


async def follow_alerts(notifier: Notifier) -> None:
    """Feed the board from `cx.alerts` until cancelled; enable its writes; once both the board
    and the notifier have read their topics, seed the Alertmanager channels."""
    from streams.notifier import CompactedView  # streams.notifier imports this module

    settings, board = notifier.settings, notifier.board
    board.writer = BoardWriter(
        asyncio.get_running_loop(),
        notifier.outbox.producer,
        settings.topic_silences,
        notifier.apply_silence_record,
    )
    view = CompactedView(
        settings.bootstrap_servers,
        settings.topic_alerts,
        lambda _key, value: board.state.ingest_record(value),
        aiokafka_config(settings),
    )
    board.caught_up = lambda: view.caught_up.is_set() and notifier.ready.is_set()
    task = asyncio.create_task(view.run(), name="board view")
    await view.caught_up.wait()
    await notifier.ready.wait()
    seeded = seed_alertmanagers(
        board.state.open_alerts(),
        notifier.dispatcher.root,
        notifier.receivers,
        notifier.silences,
        notifier.seen.statuses,
    )
    log.info(
        "board read %s: %d open, %d resolved conflicts; %d alerts to keep re-posting",
        settings.topic_alerts,
        len(board.state.open),
        len(board.state.resolved),
        seeded,
    )
    await task
