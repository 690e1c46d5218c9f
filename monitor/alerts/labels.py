"""An alert's labels and label matchers, shared by routes and silences (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.alerts.model import Alert

MULTI_VALUED = ("owners",)


def alert_labels(alert: Alert) -> dict[str, str]:
    """What routes and silences match on: the alert's custom labels, then its own fields.

    `owners` is the department pair in gap direction, joined by commas; a matcher on it matches
    when any owner matches.
    """
    return {
        **alert.labels,
        "rule": alert.rule_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "owners": ",".join(alert.owners),
        "from_department": alert.from_department,
        "to_department": alert.to_department,
        "status": alert.status,
        "key": alert.key,
    }


@dataclass(frozen=True)
class LabelMatcher:
    """`name=value`, `name!=value`, `name=~regex` or `name!~regex` (regexes match whole values)."""

    name: str
    value: str
    op: str = "="

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            re.compile(self.value)  # raises re.error for the caller to report

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether the labels satisfy this matcher (a missing label is the empty string)."""
        raw = labels.get(self.name, "")
        values = raw.split(",") if self.name in MULTI_VALUED and raw else [raw]
        if self.op == "=":
            return self.value in values
        if self.op == "!=":
            return self.value not in values
        hit = any(re.fullmatch(self.value, v) for v in values)
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)(.*)$")


def parse_matcher(text: str) -> LabelMatcher:
    """Parse `k=v`, `k!=v`, `k=~re`, `k!~re`; raise ValueError with the expected form."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"expected a matcher like rule=billing-charges-waived-fee, got {text!r}")
    name, op, value = found.groups()
    try:
        return LabelMatcher(name, value.strip(), op)
    except re.error as exc:
        raise ValueError(f"invalid regex in {text!r}: {exc}") from None


def parse_labels(pairs: list[str]) -> dict[str, str]:
    """`k=v` pairs (from the command line) as a label set; raise ValueError on a bad pair."""
    labels: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected a label like severity=high, got {pair!r}")
        labels[name.strip()] = value.strip()
    return labels
