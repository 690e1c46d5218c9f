"""`cxmon run`: load rules, make sure topics exist, expose metrics and run the Faust worker."""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timedelta
from typing import Any

from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry, disable_created_metrics

from monitor.build import engine_form
from monitor.engine import Ruleset
from monitor.engine.clock import EPOCH
from monitor.errors import RuleError
from monitor.httpserver import Health, serve
from monitor.metrics import Metrics
from monitor.metrics.worker import LOOP_LAG_EVERY_S
from monitor.rules import load_rules
from monitor.settings import Settings
from monitor.sources import load_sources
from monitor.sources.loader import departments_named
from streams.agents import Detection
from streams.app import Topology, build_topology, new_worker, receiver
from streams.kafka_security import describe
from streams.sensors import FAUST_PREFIX, CachedPrometheusMonitor, sample_loop_lag
from streams.sources import SourceIntake
from streams.topics import ensure_topics, worker_topics
from streams.wiring import install_agents

log = logging.getLogger("cxmon")
__all__ = ["FAUST_PREFIX", "run_worker"]


def _watermarks(topo: Topology, detection: Detection, topic: str) -> dict[int, datetime]:
    """The event-time watermark of each partition of the events topic this worker reads now
    (scrape time, on the HTTP thread: copies, never iterates a live dict)."""
    app: Any = topo.app
    owned = {tp.partition for tp in list(app.assignor.assigned_actives()) if tp.topic == topic}
    marks = dict(detection.admission.watermarks)  # keyed by (topic, partition)
    return {
        where[1]: mark.value
        for where, mark in marks.items()
        if isinstance(where, tuple) and where[0] == topic and where[1] in owned
        if mark.value > EPOCH
    }


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT. Raises RuleError before touching Kafka if the rules are bad."""
    loaded = load_rules([settings.rules_path], settings.rule_limits())
    sources = load_sources([settings.sources_path], departments_named(loaded.rules))
    if loaded.errors or sources.errors:
        raise RuleError(loaded.errors + sources.errors)
    for issue in sources.issues:
        log.warning("%s", issue)
    # Faust makes its own directory under this one but not this one's parents: `cxmon run` in a
    # fresh directory (even with memory://) died with FileNotFoundError on `.cxmon/data`.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` only clutters
    registry = CollectorRegistry()
    metrics = Metrics(
        registry,
        max_event_series=settings.max_event_series,
        live_horizon_s=settings.live_horizon_s,
    )
    metrics.init_rules(loaded.rules)
    metrics.init_sources(sources.mappings.topics)
    metrics.rules_loaded_outcome(success=True)
    # Served from before the first Kafka call: liveness holds while topics are being created.
    health = Health("waiting for the consumer group and state recovery")
    http = serve(settings.metrics_host, settings.metrics_port, registry, health)
    log.info("kafka %s: %s", settings.bootstrap_servers, describe(settings))
    # A department's topic is its own; created here only so a worker can start before it.
    plan = {
        **worker_topics(settings),
        **{t: (settings.topic_partitions, {}) for t in sources.mappings.topics},
    }
    created = ensure_topics(settings, plan)
    if created:
        log.info("created topics %s", ", ".join(created))
    ruleset = Ruleset(
        loaded.rules,
        lateness=timedelta(seconds=settings.lateness_s),
        max_state_entries=settings.max_state_entries,
    )
    topo = build_topology(settings, sources.mappings.topics)
    # Faust's own sensor (consumer lag, stream internals) on the same registry and endpoint;
    # `setup_prometheus_sensors` would also add a page to Faust's web server, which is off.
    topo.app.monitor = CachedPrometheusMonitor(metrics=FaustMetrics.create(registry, FAUST_PREFIX))
    topo.state.report_to(metrics)
    intake = SourceIntake(sources.mappings, metrics, settings)
    detection = Detection(topo, settings, ruleset, metrics, intake)
    metrics.watch_watermarks(lambda: _watermarks(topo, detection, settings.topic_events))

    def ready() -> None:
        metrics.worker_ready.set(1)
        health.set_ready()

    def rebalancing() -> None:
        health.set_not_ready("rebalancing")
        metrics.worker_ready.set(0)

    topo.app.on_ready.connect(receiver(ready))
    topo.app.on_rebalance_started.connect(receiver(rebalancing))
    install_agents(topo, detection, settings)

    @topo.app.task  # type: ignore[untyped-decorator]
    async def loop_lag() -> None:
        await sample_loop_lag(metrics.loop_lag.observe, LOOP_LAG_EVERY_S)

    log.info(
        "cxmon worker (%s engine): %d rules from %s, %d source mappings (%s), metrics on "
        "http://%s:%d/metrics (/healthz, /readyz)",
        engine_form(),
        len(loaded.rules),
        settings.rules_path,
        len(sources.mappings),
        ", ".join(sources.mappings.topics) or "no raw topics",
        http.host,
        http.port,
    )
    worker = new_worker(topo.app, settings)
    # What is loaded by now (modules, rules, the app) lives as long as the worker: keep it out
    # of the cyclic garbage collector's full scans, which otherwise walk all of it each time.
    gc.freeze()
    # The engine makes and drops several objects per event and rule, and the default threshold
    # (700 allocations) ran a young collection every few events; what the collector finds is
    # the client libraries' rare cycles (futures, tracebacks), which can wait for 50,000.
    gc.set_threshold(50_000, 20, 20)
    worker.execute_from_commandline()
