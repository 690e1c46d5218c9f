"""The agents: fetched batches -> the driver -> alerts. The one catch-all that dead-letters lives here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from monitor.alerts import Alert, alert_from
from monitor.alerts.console import print_alert
from monitor.engine import Finding, Ruleset
from monitor.engine.clock import EPOCH, deadline_clock
from monitor.engine.driver import Admission, Driver
from monitor.engine.state import ref_from_json, ref_json
from monitor.events import Rejected, RejectReason
from monitor.events.envelope import utcnow
from monitor.events.mapping import MappingFailed, SourceMappings
from monitor.metrics import Metrics
from monitor.rules import load_rules
from monitor.settings import Settings
from monitor.sources import load_sources
from monitor.sources.loader import departments_named
from streams.app import Topology
from streams.counters import drain_counters, update_open_gauges
from streams.dead_letters import dead_letter, message_of
from streams.faust_compat import producer_of, records_waiting
from streams.keyed import KeyedBatches
from streams.sources import SourceIntake
from streams.table_store import TableStore, partition_for

log = logging.getLogger("cxmon")


class Detection:
    """The worker's glue: the driver over the state table, the metrics and the console."""

    def __init__(
        self,
        topo: Topology,
        settings: Settings,
        ruleset: Ruleset,
        metrics: Metrics,
        intake: SourceIntake | None = None,
    ):
        self.topo = topo
        self.settings = settings
        self.metrics = metrics
        self.lateness = timedelta(seconds=settings.lateness_s)
        self.admission = Admission(
            lateness=self.lateness,
            max_age=timedelta(seconds=settings.max_event_age_s),
            max_ahead=timedelta(seconds=settings.max_future_s),
            max_bytes=settings.max_event_bytes,
            max_depth=settings.max_data_depth,
            max_attribute_chars=settings.max_attribute_chars,
            max_items=settings.max_data_items,
        )
        self.intake = intake or SourceIntake(SourceMappings(), metrics, settings)
        self.store = TableStore(topo.state)
        self.driver = Driver(
            ruleset,
            self.store,
            partition_of=self._keyed_partition,
            max_state_bytes=settings.max_state_bytes,
        )
        self.grace = timedelta(seconds=2)
        self.console = Console(highlight=False, soft_wrap=True) if settings.console_alerts else None
        self.keyed_partitions: list[int] = []  # asked of the broker at the first batch
        # One batch at a time through the driver, whichever agent has it: a batch's changed
        # states are written (inside its own Faust event, whose partition RocksDB writes to)
        # only after its alerts are delivered, and another agent's batch committing meanwhile
        # would write them early, and under its own partition.
        self.batch_lock = asyncio.Lock()
        self.alerts_topic: str = topo.alerts.get_topic_name()
        self.direct = False  # whether input partition p is keyed partition p (same count)
        # Per keyed partition, the newest event time applied there: the clock a tick forgets
        # by (`Driver.sweep`'s `forget_now`); none yet, nothing is forgotten.
        self.event_clock: dict[int, datetime] = {}
        # Per input (topic, partition), the last offset handled: what a tick's deadline clock
        # compares with what the partition holds.
        self.handled: dict[tuple[str, int], int] = {}

    @property
    def ruleset(self) -> Ruleset:
        """The running rules."""
        return self.driver.ruleset

    def _keyed_partition(self, key: str) -> int:
        return partition_for(key, self.keyed_partitions)

    async def ingest_batch(self, partition: int, records: Sequence[Any]) -> None:
        """`admit_batch`, one batch at a time."""
        async with self.batch_lock:
            await self.admit_batch(partition, records)
            if records:  # for the deadline clock
                self.handled[(records[-1].topic, partition)] = records[-1].offset

    async def admit_batch(self, partition: int, records: Sequence[Any]) -> None:
        """Admit the records one input partition fetched; apply or forward each event for each
        of its rule keys.

        A key's state lives on the partition Kafka's default partitioner gives the key. When the
        record arrived on that partition (producers key events by customer), this worker owns
        the state and applies the event at once; otherwise the event goes to that partition of
        the keyed topic, in one keyed record per partition per batch, so all of a customer's
        events still meet on one worker. Either way the events of one input partition reach a
        key's state in their order.
        """
        direct = await self._partitions()
        topic = records[0].topic if records else self.settings.topic_events
        # Only the events topic is co-partitioned with the keyed topic.
        arrived_on = partition if direct and topic == self.settings.topic_events else None
        where = (topic, partition)  # producers keep order within a partition of a topic
        driver = self.driver
        forwards = KeyedBatches(self.record_limit // 2)
        findings: list[Finding] = []
        now = utcnow()
        newest: datetime | None = None  # of the events applied here
        try:
            for record in records:
                try:
                    if self.intake.maps(topic):
                        mapped = self.intake.event_of(message_of(record), record.value)
                        if mapped is None:
                            continue  # skipped by the mapping's `when`
                        event = self.admission.check(where, mapped, now)
                    else:
                        event = self.admission.admit(where, record.value, record.headers, now)
                    payload: dict[str, Any] | None = None
                    for key, rule_ids in driver.routes(event).items():
                        owner = driver.partition_of(key)
                        if owner == arrived_on:
                            findings.extend(driver.apply(owner, key, event, rule_ids, now))
                            newest = event.time if newest is None else max(newest, event.time)
                            continue
                        if payload is None:
                            payload = ref_json(event)
                        item = {"k": key, "e": payload, "r": rule_ids}
                        if not forwards.add(owner, item, record, self.record_limit):
                            detail = "re-keyed for its customer, it would exceed the record limit"
                            await self.dead_letter(record, RejectReason.TOO_LARGE, detail)
                            break
                except Rejected as rejected:
                    extra = (
                        [("cx_mapping_field", rejected.field.encode())]
                        if isinstance(rejected, MappingFailed)
                        else []
                    )
                    await self.dead_letter(record, rejected.reason, rejected.detail, extra)
                except Exception as exc:
                    log.exception("unexpected error on a record; dead-lettering it")
                    await self.dead_letter(record, RejectReason.INTERNAL_ERROR, repr(exc))
            for owner, items in forwards.records():
                await self.topo.keyed.send(key=None, value={"batch": items}, partition=owner)
            if newest is not None and arrived_on is not None:
                self._read_up_to(arrived_on, newest)
            findings.extend(self.driver.settle(now - self.grace, newest))
        finally:
            # States already changed by this batch must not reach the store or the changelog
            # without the alerts they raised, whatever failed after them.
            await self.publish_all(findings)

    async def _partitions(self) -> bool:
        """Whether the input topic has the keyed topic's partitions, as the broker has them
        (the topics may predate the setting): only then is input partition p the keyed
        topic's partition p on the same worker (Faust co-partitions topics with the same
        partition count)."""
        if not self.keyed_partitions:
            producer = producer_of(self.topo.app)
            keyed = await producer.partitions_for(self.topo.keyed.get_topic_name())
            events = await producer.partitions_for(self.settings.topic_events)
            self.keyed_partitions = sorted(keyed)
            self.direct = sorted(events) == self.keyed_partitions
            if not self.direct:
                log.warning(
                    "the input topic has %d partitions and the keyed topic %d: every event "
                    "takes the keyed topic (give them the same number to skip that hop)",
                    len(events),
                    len(keyed),
                )
        return self.direct

    @property
    def record_limit(self) -> int:
        """The largest record this worker's producer sends, less room for its framing."""
        app: Any = self.topo.app
        return int(app.conf.producer_max_request_size) - 1024

    async def dead_letter(
        self,
        record: Any,
        reason: RejectReason,
        detail: str,
        extra: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """`dead_letters.dead_letter` to this worker's dead-letter topic; never raises."""
        limit = self.record_limit
        await dead_letter(self.topo.dlq, self.metrics, limit, record, reason, detail, extra)

    async def detect(self, record: Any) -> None:
        """Apply a keyed batch of events to each rule's state, or sweep a partition on a tick."""
        async with self.batch_lock:
            await self._detect(record)

    async def _detect(self, record: Any) -> None:
        value = record.value
        partition = record.message.partition
        if "tick" in value:
            # The open-expectation gauges are set once per tick, by `forget_partitions`: set
            # here, after each partition's sweep, they were computed once per owned partition.
            read_up_to = self.event_clock.get(partition, EPOCH)  # nothing read: forget nothing
            deadlines = self.deadline_clock(utcnow() - self.grace)
            await self.publish_all(self.driver.sweep(partition, deadlines, read_up_to))
            return
        now = utcnow()
        findings = []
        newest: datetime | None = None
        for item in value["batch"]:
            event = ref_from_json(item["e"])
            findings.extend(self.driver.apply(partition, item["k"], event, item["r"], now))
            newest = event.time if newest is None else max(newest, event.time)
        if newest is not None:
            self._read_up_to(partition, newest)
        findings.extend(self.driver.settle(now - self.grace, newest))
        await self.publish_all(findings)

    def deadline_clock(self, now: datetime) -> datetime:
        """The moment a sweep breaches deadlines up to (`clock.deadline_clock`): `now`, held
        back while an input partition this worker reads is a backlog not handled yet."""
        app: Any = self.topo.app
        inputs: frozenset[str] = getattr(app, "batch_topics", frozenset())
        marks = self.admission.watermarks
        clock = deadline_clock(
            now,
            (
                (records_waiting(app.consumer, tp, self.handled.get(tp)), marks.get(tp))
                for tp in app.assignor.assigned_actives()
                if tp.topic in inputs
            ),
        )
        self.metrics.deadline_clock.set(clock.timestamp())
        return clock

    def _read_up_to(self, partition: int, newest: datetime) -> None:
        """Move a keyed partition's forgetting clock to the newest event applied there."""
        known = self.event_clock.get(partition)
        if known is None or newest > known:
            self.event_clock[partition] = newest

    async def publish_all(self, findings: list[Finding]) -> None:
        """Publish a batch's alerts, then store the states it changed and send them to the
        changelog.

        The alerts are delivered first: a stored state remembers the events it has seen, so a
        worker that restarts before committing would skip those events as duplicates and never
        raise an alert that had not left. The changelog sends are registered with the commit
        barrier (streams/faust_compat.py): the batch's input offsets are committed only once
        they are delivered, and not at all if one fails.
        """
        delivered = [await self.publish(alert_from(finding)) for finding in findings]
        # after rendering: it counts failed messages too
        drain_counters(self.admission, self.ruleset, self.metrics)
        self.driver.commit()  # into the store's pending writes, which reads see
        await self.store.flush(after=delivered)  # to the table and changelog once delivered

    async def reload_between_batches(self, why: str) -> bool:
        """`reload` once no batch is in the driver (a batch sees one rule set throughout)."""
        async with self.batch_lock:
            return self.reload(why)

    def reload(self, why: str) -> bool:
        """Load the rule files again; swap them in only if they are free of errors.

        Rules whose id, kind and key are unchanged keep their state; the others start empty.
        The swap is one assignment on the event loop, so no event sees half a rule set.
        """
        try:
            result = load_rules([self.settings.rules_path], self.settings.rule_limits())
            sources = load_sources([self.settings.sources_path], departments_named(result.rules))
        # The loader reports every mistake it knows as an issue; anything else it raises on an
        # author's file (or a file vanishing mid-read) must still cost the reload, not the worker.
        except Exception:
            log.exception("rule reload (%s) failed; %d rules keep running", why, len(self.ruleset))
            self.metrics.rules_loaded_outcome(success=False)
            return False
        if result.errors or sources.errors:  # a broken mapping keeps the running ones, too
            for issue in result.errors + sources.errors:
                log.error("rule reload (%s) rejected: %s", why, issue)
            self.metrics.rules_loaded_outcome(success=False)
            log.error("rule reload (%s) failed; %d rules keep running", why, len(self.ruleset))
            return False
        old = self.ruleset.rules
        new = Ruleset(
            result.rules, self.lateness, max_state_entries=self.settings.max_state_entries
        )
        kept = [r for r in result.rules if r.id in old and old[r.id].state_tag == r.state_tag]
        self.driver.reload(new)
        self.intake = self.intake.replaced(sources.mappings)
        self.metrics.init_rules(result.rules)
        self.metrics.rules_loaded_outcome(success=True)
        log.warning(
            "rules reloaded (%s): %d rules, %d keep their state, %d added, %d removed",
            why,
            len(new),
            len(kept),
            len(set(new.rules) - set(old)),
            len(set(old) - set(new.rules)),
        )
        return True

    def forget_partitions(self, kept: Iterable[int]) -> None:
        """Keep the partitions this worker owns now; forget what it held of the others. Sets
        the open-expectation and state-size gauges (once per tick)."""
        self.driver.keep_partitions(kept)
        update_open_gauges(self.driver, self.metrics)

    def on_rebalanced(self) -> None:
        """The table is the truth again after a rebalance: decode and index it afresh, starting
        now. Left to the first tick, the pass began a second later, when a backlog had already
        written thousands of states, and read every one back (8% of a worker's CPU over a 20k
        event backlog)."""
        self.driver.reset()
        self.driver.keep_partitions(self.owned_partitions())
        self.driver.index_owned()

    def owned_partitions(self) -> list[int]:
        """The keyed topic's partitions assigned to this worker (their states are its own)."""
        app: Any = self.topo.app
        keyed = self.settings.topic_keyed
        return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == keyed)

    async def publish(self, alert: Alert) -> Any:
        """Write the alert to the durable outbox topic, count it, and show it; the result is
        awaited for its delivery."""
        # Straight to the producer Faust's topic wraps (same key and value bytes, same
        # partitioner): Faust's send path serialised and wrapped each alert again.
        delivery = await producer_of(self.topo.app).send(
            self.alerts_topic, value=alert.to_bytes(), key=alert.fingerprint.encode()
        )
        self.metrics.alerts_published.labels(status=alert.status).inc()
        self.metrics.conflicts.labels(
            alert.rule_id,
            alert.kind,
            alert.severity,
            alert.from_department,
            alert.to_department,
            alert.status,
        ).inc()
        if alert.status == "firing":
            self.metrics.observe_detection(alert.kind, alert.event_time, alert.detected_at)
        if self.console is not None:
            print_alert(self.console, alert)
        return delivery
