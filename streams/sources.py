"""The worker's side of source mappings: Faust records of mapped topics -> events, and the
topics to read. The mapping itself is `monitor.events.mapping.evaluate`, a pure function."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.events import EventRef
from monitor.events.mapping import MappingFailed, RawRecord, SourceMappings, evaluate
from monitor.metrics import Metrics
from monitor.settings import Settings

log = logging.getLogger("cxmon")


def raw_record(message: Any, value: bytes | None) -> RawRecord:
    """A Faust message as the mapping sees it (Kafka's record time is in seconds here)."""
    stamp = getattr(message, "timestamp", None)
    return RawRecord(
        topic=str(message.topic),
        value=value,
        key=message.key if isinstance(message.key, bytes) else None,
        headers=tuple((k, v) for k, v in (message.headers or []) if isinstance(v, bytes)),
        partition=int(message.partition),
        offset=int(message.offset),
        timestamp=datetime.fromtimestamp(stamp, UTC) if stamp else None,
    )


@dataclass
class SourceIntake:
    """The running mappings; counts skips and failures per topic. Swapped whole on a reload."""

    mappings: SourceMappings
    metrics: Metrics
    settings: Settings

    def maps(self, topic: str) -> bool:
        """Whether records of `topic` go through a mapping (else they are CloudEvents)."""
        return self.mappings.get(topic) is not None

    def event_of(self, message: Any, value: bytes | None) -> EventRef | None:
        """The mapped event of a record, None if skipped; MappingFailed (counted) otherwise."""
        topic = str(message.topic)
        source = self.mappings.get(topic)
        assert source is not None  # noqa: S101 - callers ask `maps` first
        try:
            event = evaluate(
                source,
                raw_record(message, value),
                max_bytes=self.settings.max_event_bytes,
                max_depth=self.settings.max_data_depth,
                max_attribute_chars=self.settings.max_attribute_chars,
                max_items=self.settings.max_data_items,
            )
        except MappingFailed as failed:
            self.metrics.mapping_failures.labels(topic=topic, field=failed.field).inc()
            raise
        if event is None:
            self.metrics.mapping_skipped.labels(topic=topic).inc()
        return event

    def replaced(self, mappings: SourceMappings) -> SourceIntake:
        """The intake after a reload: changed mappings of the topics being read take effect;
        the worker reads a newly mapped topic, and stops reading an unmapped one, after a
        restart (until then an unmapped topic keeps its old mapping)."""
        reading = set(self.mappings.topics)
        kept = {t: s for t, s in self.mappings.by_topic.items() if mappings.get(t) is None}
        changed = {t: s for t, s in mappings.by_topic.items() if t in reading}
        added = sorted(set(mappings.topics) - reading)
        if added or kept:
            log.warning(
                "source mappings reloaded; topics read from the next restart: %s; mappings "
                "removed from the next restart: %s",
                ", ".join(added) or "none",
                ", ".join(sorted(kept)) or "none",
            )
        return SourceIntake(SourceMappings({**kept, **changed}), self.metrics, self.settings)
