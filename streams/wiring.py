"""The worker's wiring on the Faust app: the two agents, rule reloads (SIGHUP and the file
watch) and the sweep timer, each handing its work to `Detection`."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from monitor.events import RejectReason
from monitor.events.envelope import utcnow
from monitor.rules.watch import RuleWatch
from monitor.settings import Settings
from streams.agents import Detection
from streams.app import Topology, receiver

log = logging.getLogger("cxmon")


def install_agents(topo: Topology, detection: Detection, settings: Settings) -> None:
    """Register the agents, the rule reloads and the sweep timer on the app."""
    topo.app.on_ready.connect(receiver(detection.on_rebalanced))
    _agents(topo, detection)
    _reloads(topo.app, detection, settings)
    _ticks(topo, detection, settings.sweep_interval_s)


def _agents(topo: Topology, detection: Detection) -> None:
    app = topo.app

    @app.agent(topo.events, name="cxmon-ingest")
    async def ingest(stream: Any) -> None:
        # One event per fetched partition batch (streams/faust_compat.py), handed over as soon
        # as it is fetched; it is acked, and its offsets become committable, when the next one
        # is taken. Faust's own consumer (CXMON_BATCH_DELIVERY=false) gives one per record.
        async for event in stream.events():
            value = event.value
            records = value if isinstance(value, list) else [event.message]
            await detection.ingest_batch(event.message.partition, records)

    @app.agent(topo.keyed, name="cxmon-detect")
    async def detect(stream: Any) -> None:
        async for record in stream.events():
            try:
                await detection.detect(record)
            except Exception:
                log.exception("unexpected error while detecting; record skipped")
                detection.metrics.events_rejected.labels(
                    reason=str(RejectReason.INTERNAL_ERROR)
                ).inc()


def _reloads(app: Any, detection: Detection, settings: Settings) -> None:
    """Rules reload on SIGHUP and, every `reload_interval_s`, when their files changed."""
    watch = RuleWatch([settings.rules_path, settings.sources_path])

    def sighup_before_start(_signum: int, _frame: object) -> None:
        app.loop.call_soon_threadsafe(reload_now)

    # SIGHUP's default action kills the process: the handler goes in before Faust starts, or a
    # SIGHUP sent as soon as the ready file appears (which it may, before the task below has
    # run) would kill the worker instead of reloading it.
    signal.signal(signal.SIGHUP, sighup_before_start)

    @app.task  # type: ignore[untyped-decorator]
    async def reload_on_sighup() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, reload_now)

    reloads: set[asyncio.Task[bool]] = set()  # held until done (the loop keeps weak refs)

    def reload_now() -> None:
        watch.changed()  # take in the files as they are now, so the timer does not reload again
        task = asyncio.ensure_future(detection.reload_between_batches("SIGHUP"))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    if settings.reload_interval_s > 0:

        @app.timer(settings.reload_interval_s)  # type: ignore[untyped-decorator]
        async def reload_on_change() -> None:
            if watch.changed():
                await detection.reload_between_batches("rule files changed")


def _ticks(topo: Topology, detection: Detection, interval_s: float) -> None:
    """Every `interval_s`, each owned keyed partition is swept, through a tick record on it
    (after the keyed records already sent there)."""
    app = topo.app

    @app.timer(interval_s)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        if app.rebalancing:
            return
        owned = detection.owned_partitions()
        detection.forget_partitions(owned)
        stamp = utcnow().isoformat()
        # Sent together: one after another, each send waited for its own turns of an event loop
        # that a catch-up keeps busy (about 0.25 s per batch), and a tick took 2.3 s against
        # its 1 s interval (1.1 s sent together; 50k backlog, production profile, 8 partitions).
        await asyncio.gather(
            *(
                topo.keyed.send(key=None, value={"tick": stamp}, partition=partition)
                for partition in owned
            )
        )
