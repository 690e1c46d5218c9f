"""The Faust app: topics, the state table and settings derived from `monitor.settings`."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from mode import BaseSignalT, SyncSignal

from monitor.settings import Settings
from streams import codecs, faust_compat, tansu
from streams.faust_compat import BatchSchema, CommitBarrier
from streams.kafka_security import faust_credentials
from streams.table_store import StateTable

log = logging.getLogger("cxmon")
# Faust's default request size; a record batch must fit in one (and in a broker's default
# message.max.bytes, 1,048,588).
PRODUCER_BATCH_BYTES = 1_000_000


class CxApp(faust.App):
    """A Faust app that announces when it is ready (group joined, tables recovered).

    Two signals, declared the way Faust declares its own (`faust/types/app.py`), for the
    moments Faust has none for; receivers are called as `receiver(app, signal=...)`:

    - `on_rebalance_started`: the group starts rebalancing, from the consumer's thread, as
      early as Faust knows it (its `on_partitions_revoked` signal comes only after the
      agents have finished what they hold and the producer has flushed).
    - `on_ready`: the group is joined and the tables recovered, the partitions are resumed,
      right before the ready line and file. Faust's `on_rebalance_complete` comes earlier,
      before the partitions are resumed, and also when recovery starts over because the
      group rebalanced again (tests/unit/test_faust_compat.py pins both).
    """

    ready_file: str | None = None
    role = "worker"  # named in the ready line: the notifier runs an app too
    batch_delivery = True  # CXMON_BATCH_DELIVERY; read when the first topic is made
    batch_topics: frozenset[str] = frozenset()  # delivered one message per partition batch
    commit_barrier: CommitBarrier | None = None  # awaited before input offsets are committed
    on_rebalance_started: SyncSignal[CxApp] = SyncSignal()
    on_ready: SyncSignal[CxApp] = SyncSignal()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # As faust.App does for its signals: this app's own receivers, sent with it.
        self.on_rebalance_started = self.on_rebalance_started.with_default_sender(self)
        self.on_ready = self.on_ready.with_default_sender(self)

    def _new_transport(self) -> Any:
        """Faust's Kafka transport, with a consumer that waits once per fetched batch rather
        than once per record, and one message per partition batch of `batch_topics`
        (streams/faust_compat.py)."""
        if not self.batch_delivery:
            return super()._new_transport()
        return faust_compat.Transport(self.conf.broker_consumer, self)

    def on_rebalance_start(self) -> None:
        """Called (from the consumer's thread) when the group starts rebalancing."""
        super().on_rebalance_start()
        self.on_rebalance_started.send()

    def on_rebalance_end(self) -> None:
        """Called by Faust's recovery right before it logs "Worker ready"."""
        super().on_rebalance_end()
        actives = sorted(f"{tp.topic}:{tp.partition}" for tp in self.assignor.assigned_actives())
        info = {"t": time.time(), "pid": os.getpid(), "actives": actives}
        log.info("cxmon %s ready: %d partitions", self.role, len(actives))
        self.on_ready.send()
        if self.ready_file:
            tmp = f"{self.ready_file}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(info, handle)
            os.replace(tmp, self.ready_file)


def receiver(action: Callable[[], object]) -> Callable[..., None]:
    """`action` as a receiver for a signal: called with no arguments, whatever is sent."""

    def receive(
        _sender: CxApp,
        /,
        *_args: Any,
        signal: BaseSignalT[Any],  # noqa: ARG001 - mode passes it to every receiver by name
        **_kwargs: Any,
    ) -> None:
        action()

    return receive


@dataclass
class Topology:
    """The app and the channels the agents use."""

    app: CxApp
    events: Any
    keyed: Any
    alerts: Any
    dlq: Any
    state: Any


def new_app(settings: Settings, app_id: str, **options: Any) -> CxApp:
    """A Faust app on the configured Kafka, with the profile's group timings and security."""
    timeouts = settings.group_timeouts()
    if settings.profile == "fast-start":
        tansu.install()  # the embedded broker's end offsets need correcting for table recovery
    brokers = ";".join(f"kafka://{host}" for host in settings.bootstrap_servers.split(","))
    app = CxApp(
        app_id,
        broker=brokers,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        broker_rebalance_timeout=timeouts["rebalance_timeout"],
        broker_session_timeout=timeouts["session_timeout"],
        broker_heartbeat_interval=timeouts["heartbeat_interval"],
        **(
            {"broker_commit_interval": timeouts["commit_interval"]}
            if "commit_interval" in timeouts
            else {}
        ),
        consumer_auto_offset_reset="earliest",
        # Faust sends every table write as its own changelog record; gathering them for a few
        # milliseconds sends one request where there were dozens (measured in BENCHMARKS.md).
        producer_linger=settings.producer_linger_ms / 1000,
        # A batch's states leave in record batches of up to this size, one in flight per
        # partition. At aiokafka's 16 KB (about 35 states) a backlog's batch of 3,000 states
        # waited for 80 round trips in a row, 3.7-5.4 s while the agent held the event loop.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        web_enabled=False,
        broker_credentials=faust_credentials(settings),
        **options,
    )
    app.batch_delivery = settings.batch_delivery
    return app


def build_topology(settings: Settings, mapped: Sequence[str] = ()) -> Topology:
    """Create the Faust app, its topics and the changelogged state table. The ingest agent
    reads the events topic and every `mapped` topic (source mappings) in one consumer group."""
    app = new_app(
        settings,
        settings.app_id,
        store=settings.store,
        datadir=str(settings.data_dir),
        table_standby_replicas=settings.standby_replicas,
    )
    app.ready_file = str(settings.ready_file) if settings.ready_file else None
    app.commit_barrier = CommitBarrier()
    events = app.topic(
        settings.topic_events,
        *mapped,
        schema=BatchSchema(key_serializer="raw", value_serializer="raw"),
    )
    app.batch_topics = frozenset({settings.topic_events, *mapped})
    state: StateTable = app.tables.add(  # type: ignore[assignment]
        StateTable(
            app,
            name="cx-state",
            default=None,
            key_type=str,  # written with the stdjson codec (streams/codecs.py)
            value_type=bytes,  # raw: the JSON bytes the detect agent writes
            partitions=settings.topic_partitions,
        )
    )
    state.barrier = app.commit_barrier
    return Topology(
        app=app,
        events=events,
        keyed=app.topic(settings.topic_keyed, key_type=str, value_serializer=codecs.NAME),
        alerts=app.topic(settings.topic_alerts, key_type=str, value_serializer="raw"),
        dlq=app.topic(settings.topic_dlq, key_serializer="raw", value_serializer="raw"),
        state=state,
    )


class BusyLoopNotice(logging.Filter):
    """Faust's timers (the commit, the ticks, its livelock check) warn when one run took longer
    than their interval. During a catch-up the event loop is busy by design, so every backlog
    logged such warnings with nothing to act on: they go out at INFO instead. How long work
    held the loop is measured by `cxmon_event_loop_lag_seconds`."""

    OVERLAP = "Timer %s is overlapping (interval=%r runtime=%r)"  # mode/timers.py

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.OVERLAP or record.levelno != logging.WARNING:
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger().isEnabledFor(logging.INFO)


def new_worker(app: faust.App, settings: Settings) -> faust.Worker:
    """A Faust worker without the terminal spinner.

    At log levels of warning and above Faust keeps a spinner that sets the root logger to DEBUG
    and filters in its handler, so every debug call on the hot path (one per message sent)
    builds a log record that is then thrown away.
    """
    worker = DeadlineWorker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.stop_timeout_s = settings.stop_timeout_s
    worker.spinner = None
    timers = logging.getLogger("mode.timers")
    if not any(isinstance(f, BusyLoopNotice) for f in timers.filters):
        timers.addFilter(BusyLoopNotice())
    return worker


class DeadlineWorker(faust.Worker):
    """A Faust worker that exits at most `stop_timeout_s` after SIGTERM or SIGINT.

    Faust's stop flushes and commits through the broker; with the broker gone it retries for
    far longer than a platform's grace period (35 s and more were seen), and a supervisor then
    kills it without a word. A timer thread, which runs even while the loop is stuck, ends the
    process at the deadline with a logged reason and exit code 1. What was not committed is
    processed again by the next worker (at-least-once), as after a crash.
    """

    stop_timeout_s = 25.0

    def _schedule_shutdown(self, signal: Any) -> None:
        if not self._signal_stop_time:
            timer = threading.Timer(self.stop_timeout_s, self._stop_overdue)
            timer.daemon = True
            timer.start()
        super()._schedule_shutdown(signal)

    def _stop_overdue(self) -> None:
        log.error(
            "still stopping %.0f s after the signal (is the broker reachable?); exiting now "
            "(setting stop_timeout_s)",
            self.stop_timeout_s,
        )
        logging.shutdown()
        os._exit(1)
