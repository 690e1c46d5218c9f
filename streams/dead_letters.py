"""Dead-lettering an input record: its original bytes with the reason in headers."""

from __future__ import annotations

import asyncio
import functools
import logging
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord

from monitor.events import RejectReason
from monitor.events.rejects import bounded_dead_letter
from monitor.metrics import Metrics

log = logging.getLogger("cxmon")


def message_of(record: Any) -> Any:
    """A record as the source mappings read it: Faust's message shape, time in seconds (an
    aiokafka record of a fetched batch has it in milliseconds)."""
    if isinstance(record, ConsumerRecord):
        stamp = None if record.timestamp is None else record.timestamp / 1000.0
        return SimpleNamespace(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=record.headers,
            timestamp=stamp,
        )
    return record


async def dead_letter(
    dlq: Any,
    metrics: Metrics,
    record_limit: int,
    record: Any,
    reason: RejectReason,
    detail: str,
    extra: list[tuple[str, bytes]] | None = None,
) -> None:
    """Write the original bytes to the dead-letter topic with the reason in headers.

    `record` is an input record (an aiokafka record of a fetched batch, or Faust's message).
    A record too large for the producer is cut to fit (`bounded_dead_letter`). A write that
    still fails is logged and counted, and never raises: it must not take the other records
    of the batch with it.
    """
    reject = [
        ("cx_reject_reason", str(reason).encode()),
        ("cx_reject_detail", detail[:1000].encode("utf-8", "replace")),
        *(extra or []),
        ("cx_source_topic", str(record.topic).encode()),
        ("cx_source_partition", str(record.partition).encode()),
        ("cx_source_offset", str(record.offset).encode()),
    ]
    original = [(k, v) for k, v in (record.headers or []) if not k.startswith("cx_")]
    key, value, headers = bounded_dead_letter(
        record.key, record.value or b"", reject, original, record_limit
    )
    metrics.events_rejected.labels(reason=str(reason)).inc()
    where = f"{record.partition}:{record.offset}"
    try:
        sent = await dlq.send(key=key, value=value, headers=headers)
    except Exception as exc:  # the producer's own errors are many; all mean "not written"
        _not_written(metrics, where, reason, exc)
        return
    if isinstance(sent, asyncio.Future):
        # The send is only queued: the broker may still refuse it. Count that too, when it
        # answers, without waiting a round trip per rejected record.
        sent.add_done_callback(functools.partial(_answered, metrics, where, reason))
    log.warning("rejected record %s: %s: %s", where, reason, detail)


def _answered(
    metrics: Metrics, where: str, reason: RejectReason, sent: asyncio.Future[Any]
) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        _not_written(metrics, where, reason, sent.exception())


def _not_written(
    metrics: Metrics, where: str, reason: RejectReason, error: BaseException | None
) -> None:
    metrics.dead_letter_failures.inc()
    log.error("record %s (%s) could not be dead-lettered: %r", where, reason, error)
