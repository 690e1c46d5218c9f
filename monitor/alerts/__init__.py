"""Alerts: what a finding becomes, how it is fingerprinted, rendered and delivered."""

from monitor.alerts.model import Alert, EvidenceItem, alert_from, fingerprint

__all__ = ["Alert", "EvidenceItem", "alert_from", "fingerprint"]
