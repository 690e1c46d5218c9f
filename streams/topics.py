"""Topic names and creation (kafka-python admin); Faust declares only its own internal topics."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from monitor.settings import Settings
from streams.kafka_security import kafka_python_config


def ensure_topics(settings: Settings) -> list[str]:
    """Create the events, keyed, alerts and dead-letter topics if missing; return those created."""
    wanted = [
        settings.topic_events,
        settings.topic_keyed,
        settings.topic_alerts,
        settings.topic_dlq,
    ]
    admin = KafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="cxmon-admin",
        **kafka_python_config(settings),
    )
    try:
        existing = set(admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        topics = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication,
            )
            for name in missing
        ]
        try:
            admin.create_topics(topics)
        except TopicAlreadyExistsError:
            pass  # another worker created it between our list and create
        return missing
    finally:
        admin.close()
