"""What every cxmon process exposes, worker or notifier."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Info, ProcessCollector

from monitor import __version__
from monitor.build import engine_form


def process_metrics(registry: CollectorRegistry, component: str) -> None:
    """Process metrics (start time, memory, CPU) and `cxmon_build_info` of one process."""
    ProcessCollector(registry=registry)
    build = Info(
        "cxmon_build",
        "cxmon version, which process this is, and whether its engine runs compiled",
        registry=registry,
    )
    build.info({"version": __version__, "component": component, "engine": engine_form()})
