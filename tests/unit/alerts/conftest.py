"""Alert fixtures for notifier unit tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from monitor.alerts.model import Alert, EvidenceItem

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def make_alert(
    n: int = 1,
    *,
    rule: str = "billing-charges-waived-fee",
    owners: tuple[str, str] = ("support", "billing"),
    severity: str = "high",
    status: Literal["firing", "resolved"] = "firing",
    evidence: int = 2,
) -> Alert:
    """An alert like the worker writes, numbered for distinct fingerprints and keys."""
    return Alert(
        fingerprint=f"fp{n:04d}",
        status=status,
        rule_id=rule,
        kind="contradiction",
        title="Billing charged a fee that support promised to waive",
        severity=severity,
        owners=list(owners),
        from_department=owners[0],
        to_department=owners[1],
        key=f"cust-{n:05d}",
        message=f"cust-{n:05d} was charged 25 for late_fee 3 days after support promised to waive it",
        labels={"team": "billing", "email": f"c{n}@example.com"},
        runbook="https://wiki.example.com/cx/waivers",
        event_time=T0,
        detected_at=T0 + timedelta(seconds=2),
        # a resolution names when the alert it resolves fired, a day before it resolved
        raised_at=T0 - timedelta(days=1) if status == "resolved" else None,
        evidence=[
            EvidenceItem(
                time=T0 + timedelta(minutes=i),
                department=owners[i % 2],
                source=owners[i % 2],
                type=f"step.{i}",
                id=f"e{i}",
                slot="first",
            )
            for i in range(evidence)
        ],
    )
