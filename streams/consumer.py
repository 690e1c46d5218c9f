"""Faust's Kafka consumer, delivering each fetched batch under one wait instead of one per record.

Faust hands every record to its agents with `wait_first(callback(message), suspend_flow.wait())`
so that a rebalance can interrupt a delivery blocked on a full stream buffer. mode's
`wait_first` wraps each of its arguments, plus the service's stopped and crashed events, in a
task and waits for the first: four tasks, an `asyncio.wait` and three cancellations per record.
Profiled on a bare Faust agent here, that was the largest single cost per event.

This consumer keeps the guarantee at the level of one fetched batch: the batch's records are
delivered one after another inside a single task, and that task is what a rebalance (or a stop,
or a crash) interrupts. The per-record checks Faust's `getmany` makes while it yields (flow
still active, same group generation) are unchanged, since the batch is still read from it one
record at a time. Everything else is Faust's: offsets, gaps, commits, the thread that fetches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service

YIELD_EVERY = 100  # records delivered before the loop lets other tasks run, as Faust does


class BatchDeliveryConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with one interruptible wait per fetched batch."""

    async def _drain_messages(self, fetcher: Any) -> None:
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    try:  # the fetch itself, outside the wait as in Faust
                        first = await records.__anext__()
                    except StopAsyncIteration:
                        first = None
                    if first is not None:
                        await self.wait_first(
                            self._deliver(first, records), self.suspend_flow.wait()
                        )
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(
        self, first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]
    ) -> None:
        """Faust's per-record step (gap tracking, commit every n, callback, read offset) for
        each record of one batch, awaiting the callback directly."""
        callback = self.callback
        read_offset = self._read_offset
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        pair: tuple[TP, Message] | None = first
        while pair is not None:
            tp, message = pair
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            offset = message.offset
            r_offset = read_offset[tp]
            if r_offset is None or offset >= r_offset:
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and self._n_acked >= commit_every:
                    self._n_acked = 0
                    await self.commit()
                await callback(message)
                read_offset[tp] = offset
            pair = await anext(rest, None)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the batch-delivering consumer."""

    Consumer = BatchDeliveryConsumer
