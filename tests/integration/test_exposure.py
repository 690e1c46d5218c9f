"""What a worker exposes: only /metrics, /healthz and /readyz, on loopback by default; no rule
file, event or customer id ever comes out of the HTTP endpoint or the metrics."""

from __future__ import annotations

import socket
import textwrap
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.events import Event
from tests.integration.harness import Deployment, publish

pytestmark = pytest.mark.integration

RULE_MARKER = "rule-text-7f3a"
CUSTOMER = "cust-secret-91c2"
RULES = textwrap.dedent(
    f"""\
    version: 1
    rules:
      - id: waived-fee-charged
        title: Billing charged a waived fee
        description: {RULE_MARKER}
        kind: contradiction
        owners: [support, billing]
        first: {{source: support, type: fee.waiver_promised}}
        then: {{source: billing, type: invoice.charged}}
        within: 30d
    """
)
PROBES = [
    "/rules",
    "/rules/waivers.yaml",
    "/waivers.yaml",
    "/events",
    "/state",
    "/../../etc/passwd",
    "/metrics/../rules",
    "/debug",
    "/",
]


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def other_address() -> str | None:
    """An address of this machine that is not loopback (None if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_endpoint_serves_only_metrics_and_health_and_leaks_no_rules_or_events(
    deployment: Deployment, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "waivers.yaml").write_text(RULES)
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        Event(
            id="w",
            source="support",
            type="fee.waiver_promised",
            time=now - timedelta(hours=2),
            subject=CUSTOMER,
            data={"note": "event-data-5d1e"},
        ),
        Event(
            id="c",
            source="billing",
            type="invoice.charged",
            time=now - timedelta(hours=1),
            subject=CUSTOMER,
            data={"note": "event-data-5d1e"},
        ),
    ]
    with deployment.worker(rules) as worker:
        publish(deployment, *events)
        assert len(deployment.alerts(expect=1, timeout_s=30, quiet_s=0.5)) == 1
        port = worker.metrics_port
        status, metrics = get(port, "/metrics")
        assert status == 200 and "cxmon_conflicts_total" in metrics
        assert [get(port, path)[0] for path in ("/healthz", "/readyz")] == [200, 200]
        probes = {path: get(port, path) for path in PROBES}
        elsewhere = other_address()
        if elsewhere is not None:
            with pytest.raises(OSError):
                socket.create_connection((elsewhere, port), timeout=2).close()
    assert {path: status for path, (status, _) in probes.items()} == dict.fromkeys(PROBES, 404)
    for text in [metrics, *(body for _, body in probes.values())]:
        for secret in (RULE_MARKER, CUSTOMER, "event-data-5d1e"):
            assert secret not in text
