"""Realistic departmental traffic with a configurable share of injected conflicts (`cxmon simulate`)."""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections.abc import Callable, Iterator
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
        story = Story(
            sim=self,
            customer=f"cust-{rng.randrange(self.customers):05d}",
            conflict=rng.random() < self.conflict_share,
            start=start,
            scale=scale,
        )
        name = rng.choices(list(STORIES), weights=[w for _, w in STORIES.values()])[0]
        STORIES[name][0](story)
        return story.events

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


@dataclass
class Story:
    """One journey being written: who, whether it goes wrong, and its events so far."""

    sim: Simulator
    customer: str
    conflict: bool
    start: datetime
    scale: float
    events: list[Event] = field(default_factory=list)

    @property
    def rng(self) -> random.Random:
        """The simulator's random source."""
        return self.sim._rng

    def at(self, hours: float, source: str, type_: str, **data: object) -> datetime:
        """Add an event `hours` after the start (compressed by `scale`); return its time."""
        moment = self.start + timedelta(hours=hours * self.scale)
        self.events.append(self.sim._event(source, type_, moment, self.customer, **data))
        return moment


def _deal(s: Story) -> None:
    deal = f"D-{s.rng.randrange(100000):05d}"
    s.at(0, "sales", "contract.signed", deal_id=deal)
    s.at(0, "sales", "deal.closed", deal_id=deal, plan=s.rng.choice(PLANS))
    if s.rng.random() < 0.1:
        s.at(6, "sales", "deal.cancelled", deal_id=deal)
        return
    if s.conflict:
        return  # onboarding never picks it up
    s.at(s.rng.uniform(4, 60), "onboarding", "kickoff.held", deal_id=deal)
    s.at(70, "billing", "invoice.issued", invoice_id=f"I-{deal}", amount=990)


def _waiver(s: Story) -> None:
    fee = s.rng.choice(FEES)
    other = s.rng.choice([f for f in FEES if f != fee])
    s.at(0, "support", "ticket.opened", topic="billing question")
    s.at(1, "support", "fee.waiver_promised", fee_code=fee)
    amount = s.rng.choice((15, 25, 49, 99))
    charged = fee if s.conflict else other
    s.at(s.rng.uniform(2, 72), "billing", "invoice.charged", fee_code=charged, amount=amount)


def _refund(s: Story) -> None:
    case = f"C-{s.rng.randrange(100000):05d}"
    s.at(0, "support", "refund.promised", case_id=case, amount=s.rng.choice((20, 80, 150)))
    if not s.conflict:
        s.at(s.rng.uniform(2, 96), "billing", "refund.issued", case_id=case)


def _incident(s: Story) -> None:
    incident = f"INC-{s.rng.randrange(100000):05d}"
    s.at(0, "support", "incident.opened", incident_id=incident, priority="P1")
    if s.conflict:
        s.at(2, "marketing", "upsell.sent", campaign="premium-support")
    s.at(6, "support", "incident.resolved", incident_id=incident)
    s.at(30, "marketing", "survey.sent", campaign="nps")


def _fatigue(s: Story) -> None:
    contacts = [("marketing", "email.sent"), ("sales", "call.made"), ("support", "call.made")]
    if s.conflict:
        contacts.append(("billing", "email.sent"))
    for hour, (department, type_) in enumerate(contacts):
        s.at(hour * 3, department, type_, reason="follow-up")


def _ticket(s: Story) -> None:
    ticket = f"T-{s.rng.randrange(100000):05d}"
    s.at(0, "support", "ticket.opened", ticket_id=ticket, topic="how-to")
    s.at(2, "support", "ticket.customer_replied", ticket_id=ticket)
    if s.conflict:
        s.at(2.2, "support", "ticket.closed", ticket_id=ticket)
    else:
        s.at(3, "support", "ticket.closed", ticket_id=ticket, reply_id="R-1")


def _order(s: Story) -> None:
    order = f"O-{s.rng.randrange(100000):05d}"
    promised = s.at(0, "sales", "order.placed", order_id=order) + timedelta(days=5)
    s.events.append(
        s.sim._event(
            "sales",
            "order.delivery_promised",
            s.events[-1].time,
            s.customer,
            order_id=order,
            promised_by=promised.isoformat().replace("+00:00", "Z"),
        )
    )
    s.at(24 * (7 if s.conflict else 3), "fulfilment", "order.shipped", order_id=order)


def _onboarding(s: Story) -> None:
    s.at(0, "onboarding", "onboarding.completed", plan=s.rng.choice(PLANS))
    if not s.conflict:
        s.at(s.rng.uniform(1, 20), "support", "account.assigned", owner="team-a")


def _cancellation(s: Story) -> None:
    s.at(0, "billing", "invoice.charged", fee_code="subscription", amount=49)
    if s.conflict:
        s.at(24, "support", "subscription.cancellation_requested", reason="price")
        s.at(24 * 3, "billing", "invoice.charged", fee_code="subscription", amount=49)


def _noise(s: Story) -> None:
    s.at(0, "support", "ticket.opened", topic="how-to")
    s.at(2, "marketing", "newsletter.sent", campaign="newsletter")
    s.at(5, "billing", "invoice.charged", fee_code="subscription", amount=49)


StoryWriter = Callable[[Story], None]
# Every story, with its relative frequency in the traffic.
STORIES: dict[str, tuple[StoryWriter, int]] = {
    "deal": (_deal, 3),
    "waiver": (_waiver, 3),
    "refund": (_refund, 2),
    "incident": (_incident, 1),
    "fatigue": (_fatigue, 1),
    "ticket": (_ticket, 2),
    "order": (_order, 2),
    "onboarding": (_onboarding, 2),
    "cancellation": (_cancellation, 1),
    "noise": (_noise, 4),
}


RawRecord = tuple[str, bytes, bytes]  # topic, key, value
CDC_SOURCE = {"connector": "postgresql", "db": "shop", "schema": "public", "table": "orders"}


def fulfilment_as_cdc(event: Event) -> RawRecord | None:
    """A fulfilment event as the shop database's Debezium change of its `orders` row, on the
    topic `sources/orders-cdc.yaml` maps back into `order.<status>`; None for other departments.
    """
    if event.department != "fulfilment" or not event.type.startswith("order."):
        return None
    order = {"order_id": event.data.get("order_id"), "customer_id": event.subject}
    value = {
        "before": {**order, "status": "packed"},
        "after": {**order, "status": event.type.removeprefix("order.")},
        "source": CDC_SOURCE,
        "op": "u",
        "ts_ms": int(event.time.timestamp() * 1000),
    }
    key = json.dumps({"order_id": order["order_id"]}).encode()
    return "shop.public.orders", key, json.dumps(value).encode()


WEBHOOK_TYPES = {"invoice.charged": "charge.succeeded", "refund.issued": "charge.refunded"}


def billing_as_webhook(event: Event) -> RawRecord | None:
    """A billing charge or refund as the payment platform's webhook event (amounts in cents,
    `created` in Unix seconds), on the topic `sources/payments.yaml` maps back; None for other
    events, which billing still publishes as CloudEvents."""
    if event.department != "billing" or event.type not in WEBHOOK_TYPES:
        return None
    metadata = {"customer_id": event.subject}
    for name in ("fee_code", "case_id"):
        if name in event.data:
            metadata[name] = str(event.data[name])
    value = {
        "id": f"evt_{event.id}",
        "object": "event",
        "type": WEBHOOK_TYPES[event.type],
        "created": int(event.time.timestamp()),
        "data": {
            "object": {
                "id": f"ch_{event.id}",
                "object": "charge",
                "amount": round(float(event.data.get("amount", 0)) * 100),
                "currency": "eur",
                "metadata": metadata,
            }
        },
    }
    return "payments.webhooks", event.subject.encode(), json.dumps(value).encode()


# Departments the simulator can publish in their system's own form (`simulate --raw`).
RAW_FORMS: dict[str, Callable[[Event], RawRecord | None]] = {
    "billing": billing_as_webhook,
    "fulfilment": fulfilment_as_cdc,
}
