"""A broker that refuses one topic's writes, as Kafka refuses a record over `max.message.bytes`.

The embedded broker (Tansu) takes records of any size and has no ACLs, so it cannot make a
write fail on its own. `RefusingBroker` runs a second embedded broker whose advertised address
is a proxy in this process: every client connection goes through the proxy, which forwards the
bytes unchanged, except Produce requests naming a refused topic while refusal is on. Those it
answers itself, as a broker would: MESSAGE_TOO_LARGE (not retryable) for the refused topic's
partitions, and NOT_LEADER_OR_FOLLOWER (retryable: the client sends them again) for any other
topic's partitions in the same request. Responses keep the request order on each connection.
"""

from __future__ import annotations

import asyncio
import signal
import struct
import subprocess
import threading
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

from aiokafka.protocol import produce

from streams.broker import broker_binary, free_port, wait_until_answers
from tests.integration.stopping import stop_group

PRODUCE = 0
MESSAGE_TOO_LARGE = 10
NOT_LEADER_OR_FOLLOWER = 6
_REQUESTS = {v: getattr(produce, f"ProduceRequest_v{v}") for v in range(3, 8)}
_RESPONSES = {v: getattr(produce, f"ProduceResponse_v{v}") for v in range(3, 8)}


class RefusingBroker:
    """An embedded broker behind a proxy that refuses writes to topics `refuses(name)` picks,
    while `refusing` is set. `refused` counts the partitions answered with an error."""

    def __init__(self, refuses: Callable[[str], bool], log_path: Path) -> None:
        self.refuses = refuses
        self.refusing = threading.Event()
        self.refused = 0
        self.log_path = log_path
        self.port = free_port()
        self._upstream = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def bootstrap(self) -> str:
        """The proxy's address: the only one clients learn."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RefusingBroker:
        try:
            self._start()
        except BaseException:
            self._stop()  # whatever of it started
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _start(self) -> None:
        self._thread.start()
        serving = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", self.port), self._loop
        )
        self._server = serving.result(10)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    str(broker_binary()),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self._upstream}",
                    "--advertised-listener-url",
                    f"tcp://{self.bootstrap}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_answers(self.bootstrap)

    def _stop(self) -> None:
        """The broker by its process group, then the proxy."""
        if self._process is not None:
            stop_group(self._process, signal.SIGKILL)  # its data is the test's only
        if self._server is not None:
            self._server.close()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    async def _connection(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        try:
            broker_in, broker_out = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            client_out.close()
            return
        # What the client gets next, in request order: None is "the broker's next response".
        answers: asyncio.Queue[bytes | None] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._requests(client_in, broker_out, answers)),
            asyncio.create_task(self._responses(broker_in, client_out, answers)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_out, broker_out):
            writer.close()

    async def _requests(
        self,
        client_in: asyncio.StreamReader,
        broker_out: asyncio.StreamWriter,
        answers: asyncio.Queue[bytes | None],
    ) -> None:
        while True:
            frame = await _frame(client_in)
            api_key, version, correlation = struct.unpack(">hhi", frame[4:12])
            if api_key == PRODUCE and version in _REQUESTS:
                body = BytesIO(frame[12:])
                (client_id_length,) = struct.unpack(">h", body.read(2))
                body.read(max(client_id_length, 0))
                request = _REQUESTS[version].decode(body)
                if request.required_acks == 0:
                    broker_out.write(frame)  # no answer expected, none queued
                    continue
                if self.refusing.is_set() and any(self.refuses(t) for t, _ in request.topics):
                    answers.put_nowait(self._refusal(version, correlation, request.topics))
                    continue
            broker_out.write(frame)
            await broker_out.drain()
            answers.put_nowait(None)

    def _refusal(
        self, version: int, correlation: int, topics: list[tuple[str, list[Any]]]
    ) -> bytes:
        extra = (-1,) if version < 5 else (-1, -1)  # timestamp, and log start offset from v5
        answered = []
        for topic, partitions in topics:
            code = MESSAGE_TOO_LARGE if self.refuses(topic) else NOT_LEADER_OR_FOLLOWER
            if code == MESSAGE_TOO_LARGE:
                self.refused += len(partitions)
            answered.append((topic, [(p, code, -1, *extra) for p, _ in partitions]))
        encoded: bytes = _RESPONSES[version](answered, 0).encode()  # aiokafka has no types
        body = struct.pack(">i", correlation) + encoded
        return struct.pack(">i", len(body)) + body

    @staticmethod
    async def _responses(
        broker_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        answers: asyncio.Queue[bytes | None],
    ) -> None:
        while True:
            answer = await answers.get()
            client_out.write(answer if answer is not None else await _frame(broker_in))
            await client_out.drain()


async def _frame(reader: asyncio.StreamReader) -> bytes:
    """One size-prefixed Kafka frame, prefix included."""
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">i", head)
    return head + await reader.readexactly(size)
