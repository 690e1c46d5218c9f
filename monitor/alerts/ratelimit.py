"""A per-receiver rate limit: a token bucket. Notifications over the limit wait; none are dropped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass
class RateLimit:
    """At most `count` notifications per `per`, with bursts up to `count`.

    `acquire` is safe to await from many groups at once on one event loop: the lock makes
    waiters take tokens in arrival order.
    """

    count: int
    per: timedelta
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._tokens = float(self.count)
        self._stamp = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        rate = self.count / self.per.total_seconds()
        self._tokens = min(float(self.count), self._tokens + (now - self._stamp) * rate)
        self._stamp = now

    def wait_needed(self) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self._refill()
        if self._tokens >= 1:
            return 0.0
        return (1 - self._tokens) * self.per.total_seconds() / self.count

    async def acquire(self) -> float:
        """Take one token, waiting for it; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while (delay := self.wait_needed()) > 0:
                await self.sleep(delay)
                waited += delay
            self._tokens -= 1
        return waited
