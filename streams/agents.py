"""The agents: decode -> re-key -> engine -> alerts. The one catch-all that dead-letters lives here."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console

from monitor.alerts import Alert, alert_from
from monitor.alerts.console import print_alert
from monitor.engine import Finding, KeyState, Ruleset
from monitor.engine.clock import Watermark
from monitor.engine.due import DueIndex, next_due
from monitor.engine.kinds import KINDS
from monitor.events import Event, Rejected, RejectReason
from monitor.events.codec import check_time_range, decode
from monitor.events.envelope import utcnow
from monitor.events.mapping import MappingFailed, SourceMappings
from monitor.events.rejects import bounded_dead_letter
from monitor.metrics import Metrics
from monitor.rules import load_rules
from monitor.rules.compiled import CompiledRule
from monitor.rules.templates import render_failures
from monitor.rules.watch import RuleWatch
from monitor.settings import Settings
from monitor.sources import load_sources
from monitor.sources.loader import departments_named
from streams.app import Topology
from streams.keyed import KeyedBatches
from streams.sources import SourceIntake
from streams.state_table import (
    current,
    encode_stored,
    partition_for,
    read_stored,
    slot_of,
    split_slot,
)

log = logging.getLogger("cxmon")
INGEST_BATCH = 1000  # input records decoded per batch, at most
INGEST_WAIT_S = 0.005  # how long a batch waits to fill: the latency batching may add


class Detection:
    """The worker's glue state: the running rules, the watermark, the metrics and the console."""

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
        self.ruleset = ruleset
        self.metrics = metrics
        self.lateness = timedelta(seconds=settings.lateness_s)
        self.max_age = timedelta(seconds=settings.max_event_age_s)
        self.max_ahead = timedelta(seconds=settings.max_future_s)
        self.watermarks: dict[tuple[str, int], Watermark] = {}
        self.intake = intake or SourceIntake(SourceMappings(), metrics, settings)
        self.grace = timedelta(seconds=2)
        self.console = Console(highlight=False, soft_wrap=True) if settings.console_alerts else None
        # Which stored states are due for a sweep; rebuilt from the table after a rebalance.
        self.due = DueIndex()
        self.owned: set[int] = set()
        self.resweep = False  # after a reload, sweep every state once under the new rules
        self.keyed_partitions: list[int] = []  # asked of the broker at the first batch
        self.direct = False  # whether input partition p is keyed partition p (same count)

    async def ingest_batch(self, records: Iterable[Any]) -> None:
        """Decode a batch of raw records; apply or forward each event for each of its rule keys.

        A key's state lives on the partition Kafka's default partitioner gives the key. When the
        record arrived on that partition (producers key events by customer), this worker owns
        the state and applies the event at once; otherwise the event goes to that partition of
        the keyed topic, in one keyed record per partition per batch, so all of a customer's
        events still meet on one worker. Either way the events of one input partition reach a
        key's state in their order.
        """
        partitions, direct = await self._partitions()
        batches = KeyedBatches(self.record_limit // 2)
        findings: list[Finding] = []
        try:
            for record in records:
                mapped = record.message.topic != self.settings.topic_events
                arrived_on = record.message.partition if direct and not mapped else None
                try:
                    event, by_key = await self.ingest(record)
                    if event is None:
                        continue  # dead-lettered
                    payload: dict[str, Any] | None = None
                    for key, rule_ids in by_key.items():
                        partition = partition_for(key, partitions)
                        if partition == arrived_on:
                            with current(record):
                                findings.extend(self.apply_event(key, partition, event, rule_ids))
                            continue
                        if payload is None:
                            payload = event.model_dump(mode="json")
                        item = {"k": key, "e": payload, "r": rule_ids}
                        if not batches.add(partition, item, record, self.record_limit):
                            detail = "re-keyed for its customer, it would exceed the record limit"
                            await self.dead_letter(record, RejectReason.TOO_LARGE, detail)
                            break
                except Exception as exc:
                    log.exception("unexpected error on a record; dead-lettering it")
                    await self.dead_letter(record, RejectReason.INTERNAL_ERROR, repr(exc))
            for partition, items in batches.records():
                await self.topo.keyed.send(key=None, value={"batch": items}, partition=partition)
        finally:
            # States already changed by this batch must not reach the changelog without the
            # alerts they raised, whatever failed after them.
            await self.publish_all(findings)

    async def _partitions(self) -> tuple[list[int], bool]:
        """The keyed topic's partitions as the broker has them (the topics may predate the
        setting), and whether the input topic has the same ones: only then is input partition
        p the keyed topic's partition p on the same worker (Faust co-partitions topics with the
        same partition count)."""
        if not self.keyed_partitions:
            app: Any = self.topo.app
            producer = app.producer._ensure_producer()
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
        return self.keyed_partitions, self.direct

    async def ingest(self, record: Any) -> tuple[Event | None, dict[str, list[str]]]:
        """Decode one raw record: the event and the rule ids for each key they correlate on."""
        message = record.message
        try:
            if self.intake.maps(message.topic):
                mapped = self.intake.event_of(message, record.value)
                if mapped is None:
                    return None, {}  # skipped by the mapping's `when`
                event = mapped
            else:
                event = decode(
                    record.value,
                    message.headers,
                    max_bytes=self.settings.max_event_bytes,
                    max_depth=self.settings.max_data_depth,
                    max_attribute_chars=self.settings.max_attribute_chars,
                    max_items=self.settings.max_data_items,
                )
            check_time_range(event, utcnow(), self.max_age, self.max_ahead)
        except Rejected as rejected:
            extra = (
                [("cx_mapping_field", rejected.field.encode())]
                if isinstance(rejected, MappingFailed)
                else []
            )
            await self.dead_letter(record, rejected.reason, rejected.detail, extra)
            return None, {}
        # Producers keep order within a partition of a topic: one watermark for each.
        where = (message.topic, message.partition)
        watermark = self.watermarks.setdefault(where, Watermark(self.lateness))
        if watermark.is_too_late(event.time):
            self.metrics.count_late(event.department)
            detail = (
                f"event time {event.time.isoformat()} is behind the watermark "
                f"{watermark.value.isoformat()} (lateness {watermark.lateness})"
            )
            await self.dead_letter(record, RejectReason.TOO_LATE, detail)
            return None, {}
        if event.time < watermark.highest:
            self.metrics.count_out_of_order(event.department)
        watermark.observe(event.time)
        self.metrics.count_consumed(event.department, event.type)
        by_key: dict[str, list[str]] = defaultdict(list)
        for route in self.ruleset.routes(event):
            by_key[route.key].append(route.rule.id)
        return event, by_key

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
        """Write the original bytes to the dead-letter topic with the reason in headers.

        A record too large for the producer is cut to fit (`bounded_dead_letter`). A write that
        still fails is logged and counted, and never raises: it must not take the other records
        of the batch with it.
        """
        message = record.message
        reject = [
            ("cx_reject_reason", str(reason).encode()),
            ("cx_reject_detail", detail[:1000].encode("utf-8", "replace")),
            *(extra or []),
            ("cx_source_topic", str(message.topic).encode()),
            ("cx_source_partition", str(message.partition).encode()),
            ("cx_source_offset", str(message.offset).encode()),
        ]
        original = [(k, v) for k, v in (message.headers or []) if not k.startswith("cx_")]
        key, value, headers = bounded_dead_letter(
            message.key, record.value or b"", reject, original, self.record_limit
        )
        self.metrics.events_rejected.labels(reason=str(reason)).inc()
        try:
            await self.topo.dlq.send(key=key, value=value, headers=headers)
        except Exception as exc:  # the producer's own errors are many; all mean "not written"
            self.metrics.dead_letter_failures.inc()
            log.error(
                "record %s:%s (%s) could not be dead-lettered: %r",
                message.partition,
                message.offset,
                reason,
                exc,
            )
            return
        log.warning(
            "rejected record %s:%s: %s: %s", message.partition, message.offset, reason, detail
        )

    async def detect(self, record: Any) -> None:
        """Apply a keyed event to each rule's state, or sweep a partition on a clock tick."""
        value = record.value
        partition = record.message.partition
        if "tick" in value:
            findings = self.sweep(partition)
        elif "batch" in value:
            findings = []
            for item in value["batch"]:
                findings.extend(self.apply(item["k"], partition, item["e"], item["r"]))
        else:  # one event per record, as workers before batching wrote it
            findings = self.apply(record.key, partition, value["event"], value["rules"])
        await self.publish_all(findings)

    async def publish_all(self, findings: list[Finding]) -> None:
        """Publish a batch's alerts, then write the states it changed to the changelog.

        The alerts are delivered first: a state in the changelog remembers the events it has
        seen, so a worker that restarts before committing would skip those events as duplicates
        and never raise an alert that had not left.
        """
        delivered = [await self.publish(alert_from(finding), finding) for finding in findings]
        self._drain_engine_counters()  # after rendering: it counts failed messages too
        if delivered:
            await asyncio.gather(*delivered)
        await self.topo.state.flush_changelog()

    def apply(
        self, key: str, partition: int, payload: dict[str, Any], rule_ids: list[str]
    ) -> list[Finding]:
        """One keyed event (as JSON) for the rules listed with it."""
        return self.apply_event(key, partition, Event.model_validate(payload), rule_ids)

    def apply_event(
        self, key: str, partition: int, event: Event, rule_ids: list[str]
    ) -> list[Finding]:
        """One event for the rules listed with it, on the partition that holds the key."""
        ref = event.ref()
        now = utcnow()
        findings: list[Finding] = []
        for rule_id in rule_ids:
            rule = self.ruleset.rules.get(rule_id)
            if rule is None:
                continue  # removed by a reload since the event was keyed
            slot = slot_of(rule_id, key)
            stored = self._stored(slot)
            state = self._state(stored, rule.state_tag)
            findings.extend(self.ruleset.step(rule, key, state, ref, now))
            self._store(slot, partition, state, rule, previous=stored)
        return findings

    def sweep(self, partition: int) -> list[Finding]:
        """Fire due deadlines and expire state for the keys of one partition that are due."""
        now = utcnow() - self.grace
        self._index_owned()
        findings: list[Finding] = []
        for slot in self.due.pop_due(partition, now.timestamp()):
            rule_id, key = split_slot(slot)
            rule = self.ruleset.rules.get(rule_id)
            if rule is None:  # removed by a reload
                self.topo.state.pop(slot, None)
                self.due.remove(slot)
                continue
            stored = self._stored(slot)
            state = self._state(stored, rule.state_tag)
            findings.extend(self.ruleset.sweep(rule, key, state, now))
            self._store(slot, partition, state, rule, swept_at=now, previous=stored)
        self._update_open_gauge()
        return findings

    def _index_owned(self) -> None:
        """Index the stored states of owned partitions not indexed yet, in one pass."""
        missing = {p for p in self.owned if not self.due.covers(p)}
        if not missing:
            return
        for partition in missing:
            self.due.cover(partition)
        for slot, raw in list(self.topo.state.items()):
            stored = read_stored(raw)
            if stored and stored.get("p") in missing:
                rule_id = split_slot(slot)[0]
                due = stored.get("d", -math.inf) if not self.resweep else -math.inf
                due = math.inf if due is None else due
                self.due.set(
                    slot,
                    stored["p"],
                    rule_id,
                    due,
                    stored.get("o", 0),
                    stored.get("b", 0),
                    stored.get("w"),
                )
        self.resweep = False

    def _stored(self, slot: str) -> dict[str, Any] | None:
        return read_stored(self.topo.state.get(slot))

    @staticmethod
    def _state(stored: dict[str, Any] | None, tag: str) -> KeyState:
        """The stored state, unless it belongs to an earlier rule with another kind or key."""
        if not stored or stored.get("r") != tag:
            return KeyState()
        return KeyState.from_json(stored["s"])

    def _store(
        self,
        slot: str,
        partition: int,
        state: KeyState,
        rule: CompiledRule,
        swept_at: datetime | None = None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        """Write the state with its next sweep time and expectation counts (or delete it)."""
        if state.is_empty():
            if slot in self.topo.state:
                del self.topo.state[slot]
            self.due.remove(slot)
            return
        due_at = next_due(rule, state, self.lateness, swept_at)
        waiting = sum(1 for e in state.expectations if e.breached_at is None)
        breached = len(state.expectations) - waiting
        oldest = min((e.due for e in state.expectations if e.breached_at is not None), default=None)
        encoded: dict[str, Any] = {
            "p": partition,
            "r": rule.state_tag,
            "s": state.to_json(),
            "d": due_at.timestamp() if due_at is not None else None,  # None: never
            "o": waiting,
            "b": breached,
        }
        if oldest is not None:
            encoded["w"] = oldest.timestamp()  # the oldest open breach's deadline
        # A stored due time is only a hint for re-indexing after a rebalance, and an early one is
        # safe, so an event or a sweep that changed nothing else does not write the changelog.
        if previous is None or {**previous, "d": encoded["d"]} != encoded:
            raw = encode_stored(encoded)
            if self._too_large(raw, state, rule):  # shrunk: store what is left instead
                self._store(slot, partition, state, rule, swept_at, previous)
                return
            self.topo.state[slot] = raw
        if self.due.covers(partition):
            when = due_at.timestamp() if due_at is not None else math.inf
            self.due.set(slot, partition, rule.id, when, waiting, breached, encoded.get("w"))

    def _too_large(self, raw: bytes, state: KeyState, rule: CompiledRule) -> bool:
        """Whether a state's record is over `max_state_bytes`; if so, its oldest entries are
        dropped (and counted as evictions) until it fits."""
        limit = self.settings.max_state_bytes
        if len(raw) <= limit:
            return False
        dropped = state.shrink(limit - 512)  # room for the record's own fields
        if not dropped:
            return False  # nothing left to drop: store it as it is
        self.metrics.state_evictions.labels(rule=rule.id).inc(dropped)
        log.warning(
            "rule %s: a state was %d bytes, over max_state_bytes (%d); %d oldest entries dropped",
            rule.id,
            len(raw),
            limit,
            dropped,
        )
        return True

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
        self.ruleset = new
        self.intake = self.intake.replaced(sources.mappings)
        self.due.clear()
        self.resweep = True
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

    def _update_open_gauge(self) -> None:
        for rule in self.ruleset.rules.values():
            if KINDS[rule.kind].holds_expectations:
                waiting, breached = self.due.open[rule.id], self.due.breached[rule.id]
                self.metrics.open_expectations.labels(rule=rule.id).set(waiting)
                self.metrics.open_breaches.labels(rule=rule.id).set(breached)
        self.metrics.set_oldest_breaches(self.due.oldest_breaches())

    def forget_partitions(self, kept: Iterable[int]) -> None:
        """Keep the partitions this worker owns now; forget the index of the others."""
        self.owned = set(kept)
        self.due.keep_only(self.owned)
        self._update_open_gauge()

    def on_rebalanced(self) -> None:
        """The table is the truth again after a rebalance: index it afresh at the next tick."""
        self.due.clear()

    def _drain_engine_counters(self) -> None:
        for rule_id, count in self.ruleset.eval_errors.items():
            self.metrics.rule_eval_errors.labels(rule=rule_id).inc(count)
        self.ruleset.eval_errors.clear()
        for rule_id, count in render_failures.items():
            self.metrics.message_render_failures.labels(rule=rule_id).inc(count)
        render_failures.clear()
        for rule_id, count in self.ruleset.evictions.items():
            self.metrics.state_evictions.labels(rule=rule_id).inc(count)
        self.ruleset.evictions.clear()
        for rule_id, seconds in self.ruleset.handoffs:
            self.metrics.time_to_handoff.labels(rule=rule_id).observe(seconds)
        self.ruleset.handoffs.clear()
        for rule_id, count in self.ruleset.handoffs_in_time.items():
            self.metrics.handoffs_in_time.labels(rule=rule_id).inc(count)
        self.ruleset.handoffs_in_time.clear()
        if self.ruleset.duplicates:
            self.metrics.duplicate_deliveries.inc(self.ruleset.duplicates)
            self.ruleset.duplicates = 0

    async def publish(self, alert: Alert, finding: Finding) -> Any:
        """Write the alert to the durable outbox topic, count it, and show it; the result is
        awaited for its delivery."""
        delivery = await self.topo.alerts.send(key=alert.fingerprint, value=alert.to_bytes())
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


def install_agents(topo: Topology, detection: Detection, settings: Settings) -> None:
    """Register the agents and the sweep timer on the app."""
    app = topo.app
    keyed_name = settings.topic_keyed
    app.on_ready_hooks.append(detection.on_rebalanced)

    @app.agent(topo.events, name="cxmon-ingest")
    async def ingest(stream: Any) -> None:
        # Records are acked when the next batch is taken, after their keyed batches are sent.
        async for records in stream.take_events(INGEST_BATCH, within=INGEST_WAIT_S):
            await detection.ingest_batch(records)

    @app.agent(topo.keyed, name="cxmon-detect")
    async def detect(stream: Any) -> None:
        async for record in stream.events():
            try:
                await detection.detect(record)
            except Exception:
                log.exception("unexpected error while detecting; record skipped")
                detection.metrics.events_rejected.labels(
                    reason=str(RejectReason.INTERNAL_ERROR)
                ).inc()

    watch = RuleWatch([settings.rules_path, settings.sources_path])

    @app.task  # type: ignore[untyped-decorator]
    async def reload_on_sighup() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, reload_now)

    def reload_now() -> None:
        watch.changed()  # take in the files as they are now, so the timer does not reload again
        detection.reload("SIGHUP")

    if settings.reload_interval_s > 0:

        @app.timer(settings.reload_interval_s)  # type: ignore[untyped-decorator]
        async def reload_on_change() -> None:
            if watch.changed():
                detection.reload("rule files changed")

    @app.timer(settings.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        if app.rebalancing:
            return
        owned = sorted(
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == keyed_name
        )
        detection.forget_partitions(owned)
        stamp = utcnow().isoformat()
        for partition in owned:
            await topo.keyed.send(key=None, value={"tick": stamp}, partition=partition)
