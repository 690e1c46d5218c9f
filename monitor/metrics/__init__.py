"""Every cxmon metric, defined on an injected registry; label values stay low-cardinality.

The worker's metrics are in `worker`, the notifier's in `notifier`, what both processes expose
in `common`; every public name is importable from `monitor.metrics` as before.
"""

from monitor.metrics.common import process_metrics
from monitor.metrics.notifier import (
    BOARD_ACTIONS,
    BOARD_OUTCOMES,
    CHANNELS,
    DELIVERY_BUCKETS,
    DELIVERY_OUTCOMES,
    NotifierMetrics,
)
from monitor.metrics.worker import (
    HANDOFF_BUCKETS,
    LATENCY_BUCKETS,
    LIVE_HORIZON_S,
    MAX_LABEL_CHARS,
    OTHER,
    Metrics,
)

__all__ = [
    "BOARD_ACTIONS",
    "BOARD_OUTCOMES",
    "CHANNELS",
    "DELIVERY_BUCKETS",
    "DELIVERY_OUTCOMES",
    "HANDOFF_BUCKETS",
    "LATENCY_BUCKETS",
    "LIVE_HORIZON_S",
    "MAX_LABEL_CHARS",
    "OTHER",
    "Metrics",
    "NotifierMetrics",
    "process_metrics",
]
