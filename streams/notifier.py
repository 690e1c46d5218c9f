"""The notifier process: a Faust agent on `cx.alerts` feeding `monitor.alerts`' dispatcher.

Kafka glue only: the agent reads alerts without auto-acknowledging and acks each one when the
dispatcher says it was delivered or dead-lettered, so Faust commits an alert's offset only
then. Two compacted topics are read in full by every notifier before it delivers anything:
the silences and the (fingerprint, status) pairs already delivered.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry, disable_created_metrics
from pydantic import ValidationError

from monitor.alerts.board.api import BoardApp
from monitor.alerts.board.state import BoardState
from monitor.alerts.channels import ChannelError
from monitor.alerts.channels.webhook import payload
from monitor.alerts.dispatch.dedupe import SeenAlerts
from monitor.alerts.dispatch.group import Dispatcher
from monitor.alerts.loader import AlertingConfig
from monitor.alerts.model import Alert
from monitor.alerts.receivers import ChannelFactory, build_receivers, build_stages, channel_labels
from monitor.alerts.secrets import Redactor
from monitor.alerts.silences import Silence, SilenceBook
from monitor.alerts.stages.deliver import RetryPolicy
from monitor.events.envelope import utcnow
from monitor.httpserver import Health, serve
from monitor.metrics import NotifierMetrics
from monitor.settings import Settings
from streams.app import CxApp, new_app, new_worker, receiver
from streams.board import BoardWriter, new_board, seed_alertmanagers
from streams.compacted import CompactedView
from streams.kafka_security import aiokafka_config
from streams.sensors import FAUST_PREFIX, CachedPrometheusMonitor
from streams.topics import ensure_topics, notifier_topics

log = logging.getLogger("cxmon.notify")


class KafkaChannel:
    """Writes each notification (the webhook JSON) to a topic, keyed by group."""

    kind = "kafka"

    def __init__(self, outbox: KafkaOutbox, topic: str) -> None:
        self.outbox = outbox
        self.topic = topic

    @property
    def name(self) -> str:
        """kafka://TOPIC."""
        return f"kafka://{self.topic}"

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        """Produce and wait for the broker's acknowledgement."""
        body = payload(alerts, receiver=receiver, group_key=group_key, repeat=repeat)
        try:
            await self.outbox.producer.send_and_wait(self.topic, key=group_key.encode(), value=body)
        except Exception as exc:  # aiokafka raises many error types; all mean "try again later"
            raise ChannelError(f"{self.name}: {exc!r}", retryable=True) from None


class KafkaOutbox:
    """The notifier's writes: dead letters and delivered (fingerprint, status) records."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer (created on the event loop by `start`)."""
        if self._producer is None:
            raise RuntimeError("the outbox is not started")
        return self._producer

    async def start(self) -> None:
        """Connect the producer; aiokafka needs the running loop."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            acks="all",
            **aiokafka_config(self.settings),
        )
        await self._producer.start()

    async def dead_letter(
        self, alert: Alert, *, receiver: str, channel: str, reason: str, attempts: int
    ) -> None:
        """The original alert, with why it could not be delivered in headers."""
        headers = [
            ("cx_dead_letter_reason", reason[:1000].encode("utf-8", "replace")),
            ("cx_receiver", receiver.encode()),
            ("cx_channel", channel.encode()),
            ("cx_attempts", str(attempts).encode()),
        ]
        await self.producer.send_and_wait(
            self.settings.topic_alerts_dlq,
            key=alert.fingerprint.encode(),
            value=alert.to_bytes(),
            headers=headers,
        )

    async def mark_seen(self, fingerprint: str, status: str | None) -> None:
        """Record a delivered (fingerprint, status), or an intent (None: its tombstone), on
        the compacted topic."""
        await self.producer.send_and_wait(
            self.settings.topic_notified,
            key=fingerprint.encode(),
            value=status.encode() if status is not None else None,
        )


class Notifier:
    """Everything the agent needs, wired together."""

    def __init__(
        self,
        settings: Settings,
        config: AlertingConfig,
        redactor: Redactor,
        metrics: NotifierMetrics,
        env: Any,
        write: Callable[[str], None],
        board: BoardApp | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = KafkaOutbox(settings)
        self.board = board or BoardApp(BoardState(), SilenceBook())  # streams/board.py
        self.silences = self.board.silences
        self.seen = SeenAlerts(self.outbox.mark_seen)
        factory = ChannelFactory(
            env,
            redactor,
            write,
            kafka=lambda topic: KafkaChannel(self.outbox, topic),
            on_resend=lambda outcome: metrics.alertmanager_resends.labels(outcome=outcome).inc(),
        )
        self.receivers = build_receivers(config, factory)
        metrics.init_receivers(channel_labels(self.receivers))
        policy = RetryPolicy(
            initial=timedelta(seconds=settings.notify_retry_initial_s),
            max_backoff=timedelta(seconds=settings.notify_retry_max_s),
            max_age=timedelta(seconds=settings.notify_max_age_s),
        )
        stages = build_stages(self.silences, metrics, policy, self.outbox)
        self.dispatcher = Dispatcher(config.root, self.receivers, stages, self.seen)
        self.dispatcher.on_resent = metrics.resent.inc
        self.metrics = metrics
        self.views = [
            CompactedView(
                settings.bootstrap_servers,
                settings.topic_silences,
                self.apply_silence_record,
                aiokafka_config(settings),
            ),
            CompactedView(
                settings.bootstrap_servers,
                settings.topic_notified,
                self._seen,
                aiokafka_config(settings),
            ),
        ]
        self.ready = asyncio.Event()

    def apply_silence_record(self, key: bytes, value: bytes | None) -> None:
        """One record of the silences topic (None: a tombstone)."""
        if value is None:
            self.silences.remove(key.decode())
            return
        try:
            self.silences.upsert(Silence.from_bytes(value))
        except ValidationError:
            log.warning("ignoring an unreadable record on %s", self.settings.topic_silences)
        self.metrics.silences_active.set(len(self.silences.active(utcnow())))

    def _seen(self, key: bytes, value: bytes | None) -> None:
        self.seen.load(key.decode(), value.decode() if value else None)

    async def start(self) -> None:
        """Start the producer and the views; set `ready` once both views are read to the end."""
        await self.outbox.start()
        tasks = [asyncio.create_task(view.run(), name=f"view {view.topic}") for view in self.views]
        tasks.append(asyncio.create_task(follow_alerts(self), name="board"))
        await asyncio.gather(*(view.caught_up.wait() for view in self.views))
        log.info(
            "notifier ready: %d silences, %d alerts delivered before",
            len(self.silences.silences),
            len(self.seen.statuses),
        )
        self.ready.set()
        await asyncio.gather(*tasks)


async def follow_alerts(notifier: Notifier) -> None:
    """Feed the board from `cx.alerts` until cancelled; enable its writes; once both the board
    and the notifier have read their topics, seed the Alertmanager channels."""
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


def install_notifier(
    app: CxApp,
    notifier: Notifier,
    settings: Settings,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Register the notify agent and the view task on an app (its own, or the worker's).

    `on_ready` is called once the group is joined and both compacted views are read.
    """
    alerts = app.topic(settings.topic_alerts, key_type=str, value_serializer="raw")

    rebalanced = asyncio.Event()
    app.on_ready.connect(receiver(rebalanced.set))

    @app.task  # type: ignore[untyped-decorator]
    async def follow_views() -> None:
        views = asyncio.create_task(notifier.start())
        await notifier.ready.wait()
        await rebalanced.wait()
        if on_ready is not None:
            on_ready()
        if settings.notifier_ready_file:
            settings.notifier_ready_file.write_text("ready\n", encoding="utf-8")
        await views

    @app.agent(alerts, name="cxmon-notify")
    async def notify(stream: Any) -> None:
        await notifier.ready.wait()
        async for event in stream.noack().events():
            try:
                alert = Alert.from_bytes(event.value)
            except ValidationError as exc:
                log.error(
                    "unreadable alert at %s:%s dead-lettered: %s",
                    event.message.partition,
                    event.message.offset,
                    exc,
                )
                headers = [("cx_dead_letter_reason", f"unreadable alert: {exc}"[:1000].encode())]
                await notifier.outbox.producer.send_and_wait(
                    settings.topic_alerts_dlq,
                    key=event.key.encode() if event.key else None,
                    value=event.value,
                    headers=headers,
                )
                event.ack()
                continue
            notifier.metrics.alerts_received.labels(status=alert.status).inc()
            try:
                ack = notifier.metrics.pending.track(alert.detected_at, event.ack)
                await notifier.dispatcher.submit(alert, ack)
            except Exception:  # never stop the agent; the alert stays unacknowledged
                log.exception("unexpected error dispatching alert %s", alert.fingerprint)


def run_notifier(settings: Settings, config: AlertingConfig, redactor: Redactor, env: Any) -> None:
    """Run the notifier process until SIGTERM/SIGINT."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    # Served from before the first Kafka call: liveness holds while topics are being created.
    health = Health("waiting for the consumer group and the silences")
    board = new_board(settings, config, metrics)
    http = serve(settings.metrics_host, settings.notifier_metrics_port, registry, health, board)
    ensure_topics(settings, notifier_topics(settings))
    datadir = settings.data_dir / "notifier"
    datadir.mkdir(parents=True, exist_ok=True)
    app = new_app(
        settings,
        f"{settings.app_id}-notifier",
        store="memory://",
        stream_wait_empty=False,
        # Faust keeps a directory per app even for in-memory tables; without this it lands in
        # the current directory as `<app id>-notifier-data`.
        datadir=str(datadir),
    )
    app.ready_file = None  # written once the views are read too (install_notifier)
    # Faust's sensor: the notifier's lag on the alerts topic, as the workers' on theirs.
    app.monitor = CachedPrometheusMonitor(metrics=FaustMetrics.create(registry, FAUST_PREFIX))
    app.role = "notifier"

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    notifier = Notifier(settings, config, redactor, metrics, env, write, board)

    # Ready once the group is joined and the views are read; not ready while rebalancing.
    def ready() -> None:
        health.set_ready()
        metrics.ready.set(1)

    def rebalancing() -> None:
        health.set_not_ready("rebalancing")
        metrics.ready.set(0)

    app.on_rebalance_started.connect(receiver(rebalancing))
    app.on_ready.connect(receiver(lambda: ready() if notifier.ready.is_set() else None))
    install_notifier(app, notifier, settings, on_ready=ready)
    log.info(
        "cxmon notifier: %d receivers from %s, conflict board on http://%s:%d/ (%s), "
        "metrics on /metrics (/healthz, /readyz)",
        len(notifier.receivers),
        config.file,
        http.host,
        http.port,
        "writable with the token" if board.token else "read-only",
    )
    worker = new_worker(app, settings)
    worker.execute_from_commandline()
