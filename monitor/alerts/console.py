"""An alert as the worker prints it on its console: one line, then its evidence."""

from __future__ import annotations

from rich.console import Console

from monitor.alerts.model import Alert

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def print_alert(console: Console, alert: Alert) -> None:
    """Print one alert (colour on a terminal, plain when piped)."""
    style = SEVERITY_STYLE.get(alert.severity, "") if alert.status == "firing" else "green"
    console.print(alert.one_line(), style=style, markup=False)
    for item in alert.evidence:
        when = item.time.strftime("%Y-%m-%d %H:%M")
        console.print(f"    {when}  {item.department:<11} {item.type}", markup=False)
