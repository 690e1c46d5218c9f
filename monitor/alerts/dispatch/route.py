"""The routing tree, Alertmanager-style: which routes (and so receivers) an alert reaches.

Pure and synchronous, so `cxmon routes test` and unit tests use it without a broker.
`compile_routes` checks what pydantic cannot (regexes, time zones) and returns every problem as
a positioned issue; nothing here raises for a file's content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.alerts.config import RouteSpec, TimeWindowSpec
from monitor.alerts.labels import LabelMatcher
from monitor.config.fields import WEEKDAYS
from monitor.config.locate import Locator
from monitor.errors import ConfigIssue, IssueCode, SourceLocation

DocPath = tuple[str | int, ...]
DEFAULT_GROUP_BY = ("rule",)
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(0)  # no reminders unless a route asks for them


@dataclass(frozen=True)
class TimeWindow:
    """Some days, optionally some hours of them, in one time zone."""

    days: frozenset[int]
    start: time | None
    end: time | None
    zone: ZoneInfo

    def contains(self, moment: datetime) -> bool:
        """Whether the instant falls inside the window."""
        local = moment.astimezone(self.zone)
        if local.weekday() not in self.days:
            return False
        if self.start is None or self.end is None:
            return True
        return self.start <= local.time() < self.end


@dataclass(frozen=True)
class Route:
    """A compiled route node with inherited settings resolved."""

    path: str
    receiver: str
    matchers: tuple[LabelMatcher, ...]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool
    active_time: tuple[TimeWindow, ...] = ()
    mute_time: tuple[TimeWindow, ...] = ()
    children: tuple[Route, ...] = field(default=())

    def matches(self, labels: dict[str, str]) -> bool:
        """All matchers hold (a route without matchers matches everything)."""
        return all(m.matches(labels) for m in self.matchers)

    def muted_at(self, now: datetime) -> bool:
        """Outside every active window (if any are set) or inside a mute window."""
        if self.active_time and not any(w.contains(now) for w in self.active_time):
            return True
        return any(w.contains(now) for w in self.mute_time)

    def group_key(self, labels: dict[str, str]) -> str:
        """The group an alert joins on this route: the values of its `group_by` labels."""
        names = sorted(labels) if self.group_by == ("...",) else list(self.group_by)
        values = ",".join(f"{name}={labels.get(name, '')}" for name in names)
        return f"{self.path}:{{{values}}}"


def compile_routes(
    spec: RouteSpec, locator: Locator | None = None, at: DocPath = ("route",)
) -> tuple[Route | None, list[ConfigIssue]]:
    """The compiled tree with inheritance resolved, or None and every issue (bad regex or zone),
    each at its place in the file when a locator is given."""
    issues: list[ConfigIssue] = []
    root = _compile(spec, None, "root", _Where(locator, at), issues)
    return (None if issues else root), issues


def compile_route(spec: RouteSpec) -> Route:
    """The compiled tree of a spec known to be valid; raises ValueError listing its issues."""
    root, issues = compile_routes(spec)
    if root is None:
        raise ValueError("; ".join(i.message for i in issues))
    return root


@dataclass(frozen=True)
class _Where:
    locator: Locator | None
    path: DocPath

    def __truediv__(self, part: DocPath) -> _Where:
        return _Where(self.locator, (*self.path, *part))

    def location(self) -> SourceLocation:
        if self.locator is None:
            return SourceLocation("route")
        return self.locator.value(self.path)


def _compile(
    spec: RouteSpec, parent: Route | None, name: str, at: _Where, issues: list[ConfigIssue]
) -> Route:
    matchers = _matchers(spec, at, issues)
    active = _windows(spec.active_time, at / ("active_time",), issues)
    muted = _windows(spec.mute_time, at / ("mute_time",), issues)
    node = Route(
        path=name,
        receiver=spec.receiver or (parent.receiver if parent else ""),
        matchers=tuple(matchers),
        group_by=tuple(spec.group_by)
        if spec.group_by is not None
        else _inherit(parent, "group_by", DEFAULT_GROUP_BY),
        group_wait=_pick(spec.group_wait, parent, "group_wait", DEFAULT_GROUP_WAIT),
        group_interval=_pick(spec.group_interval, parent, "group_interval", DEFAULT_GROUP_INTERVAL),
        repeat_interval=_pick(
            spec.repeat_interval, parent, "repeat_interval", DEFAULT_REPEAT_INTERVAL
        ),
        continue_=spec.continue_,
        active_time=active or (parent.active_time if parent else ()),
        mute_time=muted or (parent.mute_time if parent else ()),
    )
    children = tuple(
        _compile(child, node, f"{name}.{index}", at / ("routes", index), issues)
        for index, child in enumerate(spec.routes)
    )
    return Route(**{**node.__dict__, "children": children})


def _matchers(spec: RouteSpec, at: _Where, issues: list[ConfigIssue]) -> list[LabelMatcher]:
    matchers: list[LabelMatcher] = []
    for name, wanted in spec.match.items():
        if isinstance(wanted, list):
            pattern = "|".join(_escape(v) for v in wanted)
            matchers.append(LabelMatcher(name, pattern, "=~"))
        else:
            matchers.append(LabelMatcher(name, wanted))
    for name, regex in spec.match_re.items():
        try:
            matchers.append(LabelMatcher(name, regex, "=~"))
        except re.error as exc:
            where = (at / ("match_re", name)).location()
            issues.append(
                ConfigIssue(
                    IssueCode.WRONG_TYPE,
                    f"invalid regex for {name!r}: {exc}",
                    where,
                    hint="a Python regular expression matched against the whole label value, "
                    "e.g. 'billing-.*'; escape . [ ( | with a backslash to mean themselves",
                )
            )
    return matchers


def _windows(
    specs: list[TimeWindowSpec], at: _Where, issues: list[ConfigIssue]
) -> tuple[TimeWindow, ...]:
    windows = []
    for index, spec in enumerate(specs):
        try:
            zone = ZoneInfo(spec.timezone)
        except (KeyError, ValueError):
            issues.append(
                ConfigIssue(
                    IssueCode.WRONG_TYPE,
                    f"unknown time zone {spec.timezone!r}",
                    (at / (index, "timezone")).location(),
                    hint="use an IANA name like Europe/Berlin",
                )
            )
            continue
        start = end = None
        if spec.hours:
            first, last = spec.hours.split("-")
            start = time.fromisoformat(first)
            end = time(23, 59, 59, 999999) if last == "24:00" else time.fromisoformat(last)
        windows.append(
            TimeWindow(frozenset(WEEKDAYS.index(d) for d in spec.days), start, end, zone)
        )
    return tuple(windows)


def match_routes(root: Route, labels: dict[str, str]) -> list[Route]:
    """The routes an alert reaches: depth first, the first matching child wins unless it has
    `continue: true`; a node none of whose children match takes the alert itself."""
    return _match(root, labels) if root.matches(labels) else []


def _match(node: Route, labels: dict[str, str]) -> list[Route]:
    found: list[Route] = []
    for child in node.children:
        if not child.matches(labels):
            continue
        found.extend(_match(child, labels))
        if not child.continue_:
            break
    return found or [node]


def _escape(value: str) -> str:
    return re.escape(value)


def _inherit(parent: Route | None, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    return getattr(parent, name) if parent is not None else default


def _pick(
    value: timedelta | None, parent: Route | None, name: str, default: timedelta
) -> timedelta:
    if value is not None:
        return value
    return getattr(parent, name) if parent is not None else default
