"""Where the driver keeps per-partition state: the `StateStore` contract and a dict-backed one."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Protocol


class StateStore(Protocol):
    """Per-partition state the driver reads and writes; flushed once per batch.

    `get`, `put` and `delete` are called from `commit` and when a state is first read; `items`
    when a partition's states are indexed (after an assignment or a reload). `flush` makes the
    writes since the last flush durable; a failure there must stop the input that produced
    them from being committed.
    """

    def get(self, partition: int, slot: str) -> bytes | None: ...
    def put(self, partition: int, slot: str, value: bytes) -> None: ...
    def delete(self, partition: int, slot: str) -> None: ...
    def items(self, partition: int) -> Iterable[tuple[str, bytes]]: ...
    def flush(self) -> Awaitable[None]: ...


class DictStore:
    """A `StateStore` in a dict per partition: replay, rule tests and unit tests."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[str, bytes]] = {}

    def get(self, partition: int, slot: str) -> bytes | None:
        return self.partitions.get(partition, {}).get(slot)

    def put(self, partition: int, slot: str, value: bytes) -> None:
        self.partitions.setdefault(partition, {})[slot] = value

    def delete(self, partition: int, slot: str) -> None:
        self.partitions.get(partition, {}).pop(slot, None)

    def items(self, partition: int) -> Iterable[tuple[str, bytes]]:
        return list(self.partitions.get(partition, {}).items())

    async def flush(self) -> None:
        return None
