"""Silences on their compacted topic, for the `cxmon silence` commands (kafka-python)."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPartition

from monitor.alerts.silences import Silence, SilenceBook
from monitor.settings import Settings
from streams.kafka_security import kafka_python_config
from streams.topics import ensure_topics, notifier_topics


def write_silence(settings: Settings, silence: Silence) -> None:
    """Put one silence on the compacted silences topic (creating the topics if needed)."""
    ensure_topics(settings, notifier_topics(settings))
    producer = KafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, acks="all", **kafka_python_config(settings)
    )
    try:
        producer.send(settings.topic_silences, key=silence.id.encode(), value=silence.to_bytes())
        producer.flush()
    finally:
        producer.close()


def read_silences(settings: Settings, timeout_s: float = 10.0) -> SilenceBook:
    """Every silence on the topic, read from the beginning to the current end."""
    ensure_topics(settings, notifier_topics(settings))
    book = SilenceBook()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_python_config(settings),
    )
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.partitions_for_topic(settings.topic_silences)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(settings.topic_silences)
        tps = [KafkaPartition(settings.topic_silences, p) for p in sorted(partitions or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    if record.value is None:
                        book.remove(record.key.decode())
                    else:
                        book.upsert(Silence.from_bytes(record.value))
    finally:
        consumer.close()
    return book
