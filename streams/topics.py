"""Topic names and creation (kafka-python admin); Faust declares only its own internal topics."""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from monitor.settings import Settings
from streams.kafka_security import kafka_python_config

COMPACTED = {"cleanup.policy": "compact"}
TopicPlan = dict[str, tuple[int, dict[str, str]]]  # name -> (partitions, topic configs)


def worker_topics(settings: Settings) -> TopicPlan:
    """The events, keyed, alerts and dead-letter topics a worker reads and writes."""
    wanted = (
        settings.topic_events,
        settings.topic_keyed,
        settings.topic_alerts,
        settings.topic_dlq,
    )
    return {name: (settings.topic_partitions, {}) for name in wanted}


def notifier_topics(settings: Settings) -> TopicPlan:
    """The alerts, alerts DLQ and the two compacted topics (silences, delivered) a notifier uses."""
    return {
        settings.topic_alerts: (settings.topic_partitions, {}),
        settings.topic_alerts_dlq: (settings.topic_partitions, {}),
        settings.topic_silences: (1, COMPACTED),
        settings.topic_notified: (settings.topic_partitions, COMPACTED),
    }


def ensure_topics(settings: Settings, wanted: TopicPlan | None = None) -> list[str]:
    """Create the wanted topics (default: the worker's) if missing; return those created."""
    plan = worker_topics(settings) if wanted is None else wanted
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="cxmon-admin",
        **kafka_python_config(settings),
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in plan if name not in existing]
        if not missing:
            return []
        topics = [
            NewTopic(
                name,
                num_partitions=plan[name][0],
                replication_factor=settings.topic_replication,
                topic_configs=plan[name][1],
            )
            for name in missing
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # created by another process meanwhile
            admin.create_topics(topics)
        return missing
    finally:
        admin.close()
