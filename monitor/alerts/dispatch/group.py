"""Grouping and dispatch: route each alert, batch it with its group, run the notify pipeline.

Contract (what the Kafka glue relies on):
- `submit(alert, ack)` is awaited once per record in offset order; `ack` is called exactly
  once, after every route's notification that carries the alert finished the pipeline
  (delivered, silenced, muted or dead-lettered) and the alert was recorded as seen. An alert
  already seen, or reaching no route, is acked at once.
- Within a group, notifications are sent one at a time in arrival order: a group whose
  receiver is failing holds its later alerts until the retry stage is done with the earlier.
- The first notification of a group waits `group_wait` (to collect its siblings), later ones
  `group_interval`; with `repeat_interval` set, alerts still firing are re-sent as reminders.
- At most `max_in_flight` alerts are held unacknowledged; `submit` waits for room.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from monitor.alerts.dispatch.dedupe import SeenAlerts
from monitor.alerts.dispatch.route import Route, match_routes
from monitor.alerts.labels import alert_labels
from monitor.alerts.model import Alert
from monitor.alerts.pipeline import Receiver, Stage, StageContext, run_pipeline
from monitor.events.envelope import utcnow

log = logging.getLogger("cxmon.notify")
REMINDER_HORIZON = timedelta(days=7)  # alerts that never resolve stop being reminded


@dataclass
class Ticket:
    """One received alert waiting for its notifications; acks when the last one is done."""

    alert: Alert
    ack: Callable[[], None]
    remaining: int = 0
    sealed: bool = False
    routes: list[str] = field(default_factory=list)


@dataclass
class Group:
    """Alerts of one route that share the route's `group_by` label values."""

    route: Route
    receiver: Receiver
    key: str
    pending: list[Ticket] = field(default_factory=list)
    firing: dict[str, Alert] = field(default_factory=dict)
    last_sent: float = 0.0
    task: asyncio.Task[None] | None = None


class Dispatcher:
    """Routes, groups and notifies; see the module docstring for the contract."""

    def __init__(
        self,
        root: Route,
        receivers: dict[str, Receiver],
        stages: Sequence[Stage],
        seen: SeenAlerts,
        *,
        max_in_flight: int = 10000,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.receivers = receivers
        self.stages = stages
        self.seen = seen
        self.max_in_flight = max_in_flight
        self.sleep = sleep
        self.clock = clock
        self.groups: dict[tuple[str, str], Group] = {}
        self.in_flight = 0
        self.duplicates = 0
        self.resent = 0  # alerts sent again after a crash left their intent recorded
        self.on_resent: Callable[[int], None] | None = None  # told how many were resent
        self._room = asyncio.Condition()

    async def submit(self, alert: Alert, ack: Callable[[], None]) -> list[Route]:
        """Take one alert; returns the routes it reached (none for a duplicate)."""
        if self.seen.already(alert):
            self.duplicates += 1
            log.info("alert %s (%s) was handled before; skipped", alert.fingerprint, alert.status)
            ack()
            return []
        async with self._room:
            await self._room.wait_for(lambda: self.in_flight < self.max_in_flight)
        labels = alert_labels(alert)
        routes = match_routes(self.root, labels)
        ticket = Ticket(alert, ack)
        self.in_flight += 1
        for route in routes:
            group = self._group(route, route.group_key(labels))
            group.pending.append(ticket)
            ticket.remaining += 1
            ticket.routes.append(route.path)
            if alert.status == "firing" and route.repeat_interval > timedelta(0):
                group.firing[alert.fingerprint] = alert
            else:
                group.firing.pop(alert.fingerprint, None)
        ticket.sealed = True
        if ticket.remaining == 0:
            await self._complete(ticket)
        return routes

    def _group(self, route: Route, key: str) -> Group:
        found = self.groups.get((route.path, key))
        if found is None:
            receiver = self.receivers[route.receiver]
            found = Group(route, receiver, key)
            self.groups[(route.path, key)] = found
            found.task = asyncio.get_running_loop().create_task(
                self._run(found), name=f"group {key}"
            )
            found.task.add_done_callback(functools.partial(self._ended, found))
        return found

    def _ended(self, group: Group, task: asyncio.Task[None]) -> None:
        """A group task that died of a bug leaves its alerts unacknowledged: they are read again
        after a restart rather than lost. Forget the group so new alerts start a fresh one."""
        if task.cancelled() or task.exception() is None:
            return
        log.error(
            "notification group %s failed; its alerts stay uncommitted",
            group.key,
            exc_info=task.exception(),
        )
        if self.groups.get((group.route.path, group.key)) is group:
            del self.groups[(group.route.path, group.key)]

    async def _run(self, group: Group) -> None:
        route = group.route
        await self.sleep(route.group_wait.total_seconds())
        while True:
            if group.pending:
                batch, group.pending = group.pending, []
                await self._notify(group, batch)
            elif (
                group.firing
                and self.clock() - group.last_sent >= route.repeat_interval.total_seconds()
            ):
                await self._remind(group)
            if not group.pending and not group.firing:
                del self.groups[(route.path, group.key)]
                return
            await self.sleep(route.group_interval.total_seconds())

    async def _notify(self, group: Group, batch: list[Ticket]) -> None:
        ctx = StageContext(group.receiver, group.route, group.key, utcnow())
        alerts = [t.alert for t in batch]
        path = group.route.path
        again = [a for a in alerts if self.seen.intended(a, path)]
        if again:
            self.resent += len(again)
            if self.on_resent is not None:
                self.on_resent(len(again))
            log.warning(
                "%d alert(s) of group %s were being sent when a notifier stopped; the channel "
                "may get them twice: %s",
                len(again),
                group.key,
                ", ".join(f"{a.fingerprint} ({a.status})" for a in again),
            )
        await self.seen.intend(alerts, path)
        await run_pipeline(self.stages, ctx, alerts)
        group.last_sent = self.clock()
        for ticket in batch:
            ticket.remaining -= 1
            if ticket.remaining == 0 and ticket.sealed:
                await self._complete(ticket)

    async def _remind(self, group: Group) -> None:
        horizon = utcnow() - REMINDER_HORIZON
        for fingerprint, alert in list(group.firing.items()):
            if alert.detected_at < horizon:
                del group.firing[fingerprint]
        if group.firing:
            ctx = StageContext(group.receiver, group.route, group.key, utcnow(), repeat=True)
            await run_pipeline(self.stages, ctx, list(group.firing.values()))
        group.last_sent = self.clock()

    async def _complete(self, ticket: Ticket) -> None:
        await self.seen.record(ticket.alert, ticket.routes)
        ticket.ack()
        async with self._room:
            self.in_flight -= 1
            self._room.notify_all()

    async def close(self) -> None:
        """Stop every group; unacknowledged alerts are read again after a restart."""
        tasks = [g.task for g in self.groups.values() if g.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.groups.clear()
