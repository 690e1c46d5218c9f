"""What every cxmon process exposes, worker or notifier."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Info, ProcessCollector

from monitor import __version__


def process_metrics(registry: CollectorRegistry, component: str) -> None:
    """Process metrics (start time, memory, CPU) and `cxmon_build_info` of one process."""
    ProcessCollector(registry=registry)
    build = Info("cxmon_build", "cxmon version and which process this is", registry=registry)
    build.info({"version": __version__, "component": component})
