"""Re-keyed events grouped into records for the keyed topic, each small enough to send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def wire_size(record: Any) -> int:
    """An upper bound on the bytes an event re-encoded from this record takes as JSON.

    ASCII JSON comes back about as long as it went in; other bytes may come back as `\\uXXXX`
    escapes, six bytes for each one.
    """
    value = record.value or b""
    headers = record.headers or []  # an aiokafka record or Faust's message: both have them
    size = len(value) + sum(len(k) + len(v or b"") for k, v in headers)
    ascii_only = value.isascii() and all((v or b"").isascii() for _, v in headers)
    return size + 256 if ascii_only else 6 * size + 256


class KeyedBatches:
    """Items per keyed partition, cut into records of at most about `limit` bytes.

    One record per partition per input batch is the fast path; a batch of large events would
    make that record larger than the producer sends (it refuses the whole record, and with it
    every event in it), so a record is closed once its items could exceed `limit`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[int, tuple[list[dict[str, Any]], int]] = {}
        self._closed: list[tuple[int, list[dict[str, Any]]]] = []

    def add(self, partition: int, item: dict[str, Any], record: Any, most: int) -> bool:
        """Add one item re-keyed from `record`; False if it alone is over `most` bytes."""
        size = wire_size(record)
        if size > self.limit:
            size = len(json.dumps(item))  # rare: measure it exactly
            if size > most:
                return False
        items, used = self._open.get(partition, ([], 0))
        if items and used + size > self.limit:
            self._closed.append((partition, items))
            items, used = [], 0
        items.append(item)
        self._open[partition] = (items, used + size)
        return True

    def records(self) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(partition, items) of every record to send, in the order the items came."""
        yield from self._closed
        for partition, (items, _) in self._open.items():
            yield partition, items
