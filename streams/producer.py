"""Publishing events with kafka-python (for `cxmon publish`, `cxmon simulate` and tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from kafka import KafkaProducer

from monitor.events import Event
from monitor.events.codec import encode, encode_binary
from monitor.settings import Settings
from streams.kafka_security import kafka_python_config


class EventPublisher:
    """Sends events as CloudEvents (structured by default, or binary mode), keyed by subject."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        binary: bool = False,
        client_config: Mapping[str, Any] | None = None,
        raw: Callable[[Event], tuple[str, bytes, bytes] | None] | None = None,
    ) -> None:
        self.topic = topic
        self.binary = binary
        self.raw = raw  # events it returns a record for go out in that raw form instead
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=5, acks=1, **(client_config or {})
        )

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        binary: bool = False,
        raw: Callable[[Event], tuple[str, bytes, bytes] | None] | None = None,
    ) -> EventPublisher:
        """A publisher to the events topic with the configured brokers and security."""
        return cls(
            settings.bootstrap_servers,
            settings.topic_events,
            binary=binary,
            client_config=kafka_python_config(settings),
            raw=raw,
        )

    def send(self, event: Event) -> None:
        """Queue one event (in its raw form, to its own topic, if `raw` gives one)."""
        record = self.raw(event) if self.raw is not None else None
        if record is not None:
            topic, key, value = record
            self._producer.send(topic, value=value, key=key)
        elif self.binary:
            headers, value = encode_binary(event)
            self._producer.send(
                self.topic, value=value, key=event.subject.encode(), headers=headers
            )
        else:
            self._producer.send(self.topic, value=encode(event), key=event.subject.encode())

    def send_raw(self, value: bytes, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Queue raw bytes as they are (for malformed-record tests and `publish --raw`)."""
        self._producer.send(self.topic, value=value, headers=headers or [])

    def send_all(self, events: Iterable[Event]) -> int:
        """Queue every event and flush; returns how many were sent."""
        count = 0
        for event in events:
            self.send(event)
            count += 1
        self.flush()
        return count

    def flush(self) -> None:
        """Wait until everything queued is acknowledged."""
        self._producer.flush()

    def close(self) -> None:
        """Flush and close the connection."""
        self._producer.close()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
