"""Realistic departmental traffic with a configurable share of injected conflicts (`cxmon simulate`)."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.events import Event

FEES = ("late_fee", "setup_fee", "overage_fee")
PLANS = ("starter", "growth", "enterprise")


@dataclass
class Simulator:
    """Generates customer journeys across sales, onboarding, support, billing and marketing.

    `conflict_share` of the journeys that can go wrong do: a waived fee is charged, a closed
    deal never gets its kickoff. Everything else is ordinary traffic that must not alert.
    """

    seed: int = 7
    customers: int = 500
    conflict_share: float = 0.1
    _rng: random.Random = field(init=False)
    _ids: Iterator[int] = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 - simulation, not security
        self._ids = itertools.count(1)

    def _event(self, source: str, type_: str, at: datetime, customer: str, **data: object) -> Event:
        return Event(
            id=f"sim-{self.seed}-{next(self._ids)}",
            source=source,
            type=type_,
            time=at,
            subject=customer,
            data=dict(data),
        )

    def journey(self, start: datetime, scale: float = 1.0) -> list[Event]:
        """One customer's story starting at `start`; `scale` compresses its gaps (live mode)."""
        rng = self._rng
        customer = f"cust-{rng.randrange(self.customers):05d}"
        conflict = rng.random() < self.conflict_share
        story = rng.choice(("deal", "waiver", "noise", "noise"))

        def later(hours: float) -> datetime:
            return start + timedelta(hours=hours * scale)

        if story == "deal":
            deal = f"D-{rng.randrange(100000):05d}"
            plan = rng.choice(PLANS)
            events = [self._event("sales", "deal.closed", start, customer, deal_id=deal, plan=plan)]
            if rng.random() < 0.1:
                events.append(
                    self._event("sales", "deal.cancelled", later(6), customer, deal_id=deal)
                )
            elif not conflict:
                events.append(
                    self._event(
                        "onboarding",
                        "kickoff.held",
                        later(rng.uniform(4, 60)),
                        customer,
                        deal_id=deal,
                    )
                )
            return events
        if story == "waiver":
            fee = rng.choice(FEES)
            other = rng.choice([f for f in FEES if f != fee])
            amount = rng.choice((15, 25, 49, 99))
            events = [
                self._event("support", "ticket.opened", start, customer, topic="billing question"),
                self._event("support", "fee.waiver_promised", later(1), customer, fee_code=fee),
            ]
            charged = fee if conflict else other
            events.append(
                self._event(
                    "billing",
                    "invoice.charged",
                    later(rng.uniform(2, 72)),
                    customer,
                    fee_code=charged,
                    amount=amount,
                )
            )
            return events
        return [
            self._event("support", "ticket.opened", start, customer, topic="how-to"),
            self._event("marketing", "email.sent", later(2), customer, campaign="newsletter"),
            self._event(
                "billing", "invoice.charged", later(5), customer, fee_code="subscription", amount=49
            ),
        ]

    def backfill(self, start: datetime, end: datetime, journeys: int) -> list[Event]:
        """`journeys` stories starting between start and end, all events in event-time order."""
        span = (end - start).total_seconds()
        events: list[Event] = []
        for _ in range(journeys):
            begin = start + timedelta(seconds=self._rng.uniform(0, span))
            events.extend(e for e in self.journey(begin) if e.time <= end)
        return sorted(events, key=lambda e: e.time)


@dataclass(order=True)
class Scheduled:
    """An event waiting for its (wall-clock) time in live mode."""

    due: datetime
    seq: int
    event: Event = field(compare=False)


class LiveSchedule:
    """Journeys whose steps are released when the wall clock reaches their time."""

    def __init__(self, simulator: Simulator, scale: float) -> None:
        self.simulator = simulator
        self.scale = scale
        self._heap: list[Scheduled] = []
        self._seq = itertools.count()

    def start_journey(self, now: datetime) -> None:
        """Begin a new story now; its later steps wait in the schedule."""
        for event in self.simulator.journey(now, self.scale):
            heapq.heappush(self._heap, Scheduled(event.time, next(self._seq), event))

    def due(self, now: datetime) -> list[Event]:
        """Every scheduled event whose time has come, in order."""
        ready = []
        while self._heap and self._heap[0].due <= now:
            ready.append(heapq.heappop(self._heap).event)
        return ready
