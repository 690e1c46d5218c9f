"""`cxmon run`: load rules, make sure topics exist, expose metrics and run the Faust worker."""

from __future__ import annotations

import logging
from datetime import timedelta

import faust
from prometheus_client import CollectorRegistry, disable_created_metrics, start_http_server

from monitor.engine import Ruleset
from monitor.errors import RuleError
from monitor.metrics import Metrics
from monitor.rules import load_rules
from monitor.settings import Settings
from streams.agents import Detection, install_agents
from streams.app import build_topology
from streams.topics import ensure_topics

log = logging.getLogger("cxmon")


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT. Raises RuleError before touching Kafka if the rules are bad."""
    loaded = load_rules([settings.rules_path])
    if loaded.errors:
        raise RuleError(loaded.errors)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` only clutters
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.init_rules(loaded.rules)
    metrics.rule_reloads.labels(outcome="success").inc()
    created = ensure_topics(settings)
    if created:
        log.info("created topics %s", ", ".join(created))
    start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    ruleset = Ruleset(loaded.rules, lateness=timedelta(seconds=settings.lateness_s))
    topo = build_topology(settings)
    detection = Detection(topo, settings, ruleset, metrics)
    topo.app.on_ready_hooks.append(lambda: metrics.worker_ready.set(1))
    install_agents(topo, detection, settings)
    log.info(
        "cxmon worker: %d rules from %s, metrics on http://%s:%d/metrics",
        len(loaded.rules),
        settings.rules_path,
        settings.metrics_host,
        settings.metrics_port,
    )
    worker = faust.Worker(topo.app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
