"""Grouping, acknowledgement, dedupe, silences, retries and the dead-letter path, without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from monitor.alerts.channels import ChannelError
from monitor.alerts.config import RouteSpec
from monitor.alerts.dispatch.dedupe import SeenAlerts
from monitor.alerts.dispatch.group import Dispatcher
from monitor.alerts.dispatch.route import compile_route
from monitor.alerts.model import Alert
from monitor.alerts.pipeline import Receiver
from monitor.alerts.receivers import build_stages
from monitor.alerts.silences import SilenceBook, new_silence
from monitor.alerts.stages.deliver import DeliverStage, RetryPolicy
from monitor.metrics import NotifierMetrics
from tests.unit.alerts.conftest import make_alert


class FakeChannel:
    """Records notifications; fails the first `failures` sends (retryable unless told)."""

    kind = "webhook"
    name = "fake://"

    def __init__(self, failures: int = 0, retryable: bool = True) -> None:
        self.failures = failures
        self.retryable = retryable
        self.sent: list[list[str]] = []

    async def send(
        self, alerts: Sequence[Alert], *, receiver: str, group_key: str, repeat: bool
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise ChannelError("answered 500", retryable=self.retryable)
        self.sent.append([a.fingerprint for a in alerts])


class Letters:
    def __init__(self) -> None:
        self.dead: list[tuple[str, str]] = []

    async def dead_letter(
        self, alert: Alert, *, receiver: str, channel: str, reason: str, attempts: int
    ) -> None:
        self.dead.append((alert.fingerprint, reason))


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def setup(
    channel: FakeChannel, silences: SilenceBook | None = None, max_age_s: float = 60
) -> tuple[Dispatcher, Letters, NotifierMetrics, SeenAlerts]:
    metrics = NotifierMetrics(CollectorRegistry())
    letters = Letters()
    policy = RetryPolicy(timedelta(seconds=1), timedelta(seconds=4), timedelta(seconds=max_age_s))
    stages = build_stages(silences or SilenceBook(), metrics, policy, letters)
    deliver = stages[-1]
    assert isinstance(deliver, DeliverStage)
    deliver.sleep = no_sleep
    root = compile_route(
        RouteSpec.model_validate(
            {"receiver": "team", "group_by": ["rule"], "group_wait": "1s", "group_interval": "1s"}
        )
    )
    seen = SeenAlerts()
    dispatcher = Dispatcher(
        root, {"team": Receiver("team", [channel])}, stages, seen, sleep=no_sleep
    )
    return dispatcher, letters, metrics, seen


async def settle(dispatcher: Dispatcher) -> None:
    for _ in range(200):
        if not dispatcher.groups:
            return
        await asyncio.sleep(0)
    raise AssertionError("groups did not finish")


async def test_one_group_is_one_notification_and_acks_follow_delivery() -> None:
    channel = FakeChannel()
    dispatcher, _, _, _ = setup(channel)
    acked: list[str] = []

    def ack(fingerprint: str) -> Callable[[], None]:
        return lambda: acked.append(fingerprint)

    for n in (1, 2):
        await dispatcher.submit(make_alert(n), ack(f"fp{n:04d}"))
    assert acked == []  # nothing is acknowledged before delivery
    await settle(dispatcher)
    assert channel.sent == [["fp0001", "fp0002"]]
    assert acked == ["fp0001", "fp0002"]


async def test_a_repeated_alert_is_acked_but_not_sent_again() -> None:
    channel = FakeChannel()
    dispatcher, _, _, seen = setup(channel)
    await dispatcher.submit(make_alert(1), lambda: None)
    await settle(dispatcher)
    acked: list[bool] = []
    await dispatcher.submit(make_alert(1), lambda: acked.append(True))
    await settle(dispatcher)
    assert channel.sent == [["fp0001"]] and acked == [True]
    await dispatcher.submit(make_alert(1, status="resolved"), lambda: None)
    await settle(dispatcher)
    assert channel.sent == [["fp0001"], ["fp0001"]]
    assert seen.already(make_alert(1, status="firing"))  # a late firing after resolved is old news


async def test_retries_until_the_channel_recovers() -> None:
    channel = FakeChannel(failures=3)
    dispatcher, letters, metrics, _ = setup(channel)
    await dispatcher.submit(make_alert(1), lambda: None)
    await settle(dispatcher)
    assert channel.sent == [["fp0001"]] and letters.dead == []
    assert metrics.retries.labels(receiver="team")._value.get() == 3


async def test_a_permanent_failure_dead_letters_with_the_reason() -> None:
    channel = FakeChannel(failures=1, retryable=False)
    dispatcher, letters, _, _ = setup(channel)
    acked: list[bool] = []
    await dispatcher.submit(make_alert(1), lambda: acked.append(True))
    await settle(dispatcher)
    assert [f for f, _ in letters.dead] == ["fp0001"] and "answered 500" in letters.dead[0][1]
    assert acked == [True]


async def test_retries_stop_at_the_max_age() -> None:
    channel = FakeChannel(failures=100)
    dispatcher, letters, _, _ = setup(channel, max_age_s=0.5)
    await dispatcher.submit(make_alert(1), lambda: None)
    await settle(dispatcher)
    assert len(letters.dead) == 1 and "gave up" in letters.dead[0][1]


async def test_silenced_alerts_are_counted_not_sent() -> None:
    channel = FakeChannel()
    book = SilenceBook()
    book.upsert(
        new_silence(
            ["key=cust-00001"], timedelta(hours=1), datetime.now(UTC), created_by="t", comment=""
        )
    )
    dispatcher, _, metrics, _ = setup(channel, silences=book)
    for n in (1, 2):
        await dispatcher.submit(make_alert(n), lambda: None)
    await settle(dispatcher)
    assert channel.sent == [["fp0002"]]
    assert metrics.silenced.labels(rule="billing-charges-waived-fee")._value.get() == 1
