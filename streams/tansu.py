"""Workarounds for the embedded broker, installed only with the fast-start profile.

End offsets:
The embedded broker (Tansu) answers ListOffsets(latest) with the *base offset of the last record
batch plus one*, not with the offset after the last record. Faust's table recovery reads each
changelog partition up to that end offset, so with batched produce it stops early and loses the
last batch's records. Rather than produce one record per batch (which caps a worker at a few
hundred events/s), the worker corrects the end offsets Faust asks for: it reads the partition's
last batch, from the reported end minus one, and takes the offset after its last record. On a
real Kafka cluster (the `production` profile) nothing is patched.

Fetch wait: a Kafka broker answers a waiting fetch as soon as a record arrives; the embedded
broker holds it for the whole `fetch.max.wait.ms`, which Faust sets to 1,500 ms. Measured here,
a record waited 342 ms (median) to be fetched at 1,500 ms and 2.3 ms at 10 ms; an event crosses
two such hops (input, then the keyed topic) before it can alert. Faust's consumers therefore wait
at most 25 ms on the embedded broker.

Not less: to answer a fetch, the embedded broker lists every record batch stored for each
partition asked for, one partition after another, and stops listing when the fetch's wait runs
out. A partition it did not finish listing comes back empty, although its high watermark is past
the fetch offset. The listing grows with the batches a partition holds (one per produce
request): 20 s into a run at 1,000 events/s on 4 partitions, fetches at 10 ms came back empty for
up to 400 ms in a row. At 25 ms the alerts' p99 over five runs was 161-397 ms (median 192) and a
bare relay's 131-202 ms (median 164), against 297-527 ms and 229-276 ms at 10 ms; the medians
were unchanged (41-66 ms and 44-59 ms).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer

from streams import faust_compat

log = logging.getLogger("cxmon")
FETCH_MAX_WAIT_MS = 25


async def true_end_offsets(
    bootstrap_servers: str | list[str], reported: Mapping[Any, int], timeout_s: float = 10.0
) -> dict[Any, int]:
    """The offset after each partition's last record, given the broker's reported end offsets."""
    result = dict(reported)
    nonempty = [tp for tp, end in reported.items() if end and end > 0]
    if not nonempty:
        return result
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None
    )
    await reader.start()
    try:
        reader.assign(nonempty)
        for tp in nonempty:
            reader.seek(tp, reported[tp] - 1)
        waiting = set(nonempty)
        # Reading from the last batch's base offset returns that batch and nothing after it.
        while waiting:
            batches = await reader.getmany(*waiting, timeout_ms=int(timeout_s * 1000))
            if not batches:
                break
            for tp, records in batches.items():
                if records:
                    result[tp] = max(result[tp], records[-1].offset + 1)
                    waiting.discard(tp)
    finally:
        await reader.stop()
    return result


def install() -> None:
    """Make every Faust consumer in this process correct the embedded broker's end offsets and
    poll it without long waits."""
    faust_compat.patch_consumer_thread(_corrected, FETCH_MAX_WAIT_MS)


async def _corrected(servers: list[str], reported: Mapping[Any, int]) -> Mapping[Any, int]:
    corrected = await true_end_offsets(servers, reported)
    if corrected != reported:
        log.debug("corrected end offsets: %s -> %s", reported, corrected)
    return corrected
